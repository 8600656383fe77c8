import type { AbortRule } from '../../model/rollout.js';

/** Targets whose last attempt ended (canceled ones and those waiting for a retry have not). */
export interface EndedCounts {
  successful: number;
  failed: number;
  timed_out: number;
}

export interface FiredRule {
  index: number;
  rule: AbortRule;
  reason: string;
}

const FAILURE_WORDS: Record<AbortRule['failure'], string> = {
  failed: 'failed',
  timed_out: 'timed out',
  any: 'failed or timed out',
};

/**
 * The first abort rule that fires now and has not fired before (bit i of `firedMask` = rule i
 * fired): at least `min_executed` targets ended and the share that ended its way exceeds the
 * threshold. Compared in whole hundredths of a percent, so 10 % of 10 ended is not above 10 %.
 */
export function firedAbortRule(
  rules: readonly AbortRule[] | null,
  ended: EndedCounts,
  firedMask: number,
): FiredRule | null {
  if (rules === null) return null;
  const total = ended.successful + ended.failed + ended.timed_out;
  for (const [index, rule] of rules.entries()) {
    if ((firedMask & (1 << index)) !== 0 || total < rule.min_executed || total === 0) continue;
    const matching = rule.failure === 'any' ? ended.failed + ended.timed_out : ended[rule.failure];
    if (matching * 10_000 <= Math.round(rule.threshold_percent * 100) * total) continue;
    const share = ((matching * 100) / total).toFixed(2);
    return {
      index,
      rule,
      reason: `${share} % of ${total} ended targets ${FAILURE_WORDS[rule.failure]} (threshold ${rule.threshold_percent} %)`,
    };
  }
  return null;
}

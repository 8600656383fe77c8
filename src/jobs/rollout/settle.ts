import type { SettleRules } from '../../store/store.js';
import { firedAbortRule } from './abort.js';
import { nextAttemptTime } from './retry.js';

/** The rules the store judges ended targets by, in the transaction that ends them. */
export const SETTLE_RULES: SettleRules = { nextAttemptTime, firedAbortRule };

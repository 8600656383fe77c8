import { EventEmitter } from 'node:events';
import type { Notifier, WakeUp } from '../store.js';

/** Wake-ups within this process: where one process is the only writer (SQLite). */
export function inProcessNotifier(): Notifier {
  const events = new EventEmitter<{ wakeUp: [WakeUp] }>();
  return {
    async notify(wakeUp) {
      events.emit('wakeUp', wakeUp);
    },
    async listen(listener) {
      events.on('wakeUp', listener);
      return async () => {
        events.off('wakeUp', listener);
      };
    },
  };
}

import type { TransitionLog } from '../store/transition-types.js';
import type { Store } from '../store/types.js';

/** The store's transitions log, when this store has one. */
export function transitionLogOf(store: Store): TransitionLog | undefined {
  const candidate = store as Partial<TransitionLog> & { transitions?: TransitionLog };
  if (candidate.transitions !== undefined) return candidate.transitions;
  if (typeof candidate.listTransitions === 'function' && typeof candidate.getTransition === 'function') {
    return store as unknown as TransitionLog;
  }
  return undefined;
}

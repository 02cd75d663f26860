// Invariant checks of the state machines (group.ts, replica-state.ts, controller-state.ts): each
// checks its state after every step and throws this error, naming the broken rule, when it fails.
import { AssertionError } from 'node:assert'

/** Throws an AssertionError: a state machine broke one of its invariants. */
export function violated(machine: string, message: string): never {
  throw new AssertionError({ message: `${machine} invariant violated: ${message}` })
}

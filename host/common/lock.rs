//! The one way the host takes a `std::sync::Mutex`.
//!
//! Every lock in the host guards a few fields for a few instructions and
//! is never held across an await or a call into other code that could
//! panic; a poisoned one means a bug already reported by the panic that
//! poisoned it. Taking it panics in turn, as `lock().expect(…)` did at
//! each of the places that now call this, with one message for all and the caller's
//! line (`#[track_caller]`) to tell them apart.

use std::sync::{Mutex, MutexGuard};

pub trait Lock<T> {
    /// The guard; panics if a holder panicked (see the module's comment),
    /// naming the caller's line.
    #[track_caller]
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Lock<T> for Mutex<T> {
    #[track_caller]
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().expect("a thread panicked while holding this lock")
    }
}

//! A call's helper task (a provider socket's owner) outlives the call's
//! handle on it only briefly.

use std::time::Duration;

use tokio::task::AbortHandle;

/// How long a helper task may take to finish by itself (say goodbye to its
/// provider) once its call let go of it.
const GRACE: Duration = Duration::from_secs(2);

/// For a handle's `Drop`: the task ends by itself once its channel closes;
/// this bounds it if the provider does not answer.
pub(super) fn abort_after_grace(task: &AbortHandle) {
    let task = task.clone();
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                tokio::time::sleep(GRACE).await;
                task.abort();
            });
        }
        // The runtime is going away: so is the task.
        Err(_) => task.abort(),
    }
}

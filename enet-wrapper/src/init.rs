//! ENet's process-wide `enet_initialize` / `enet_deinitialize`, reference counted.

use crate::{Error, Result};
use std::sync::Mutex;

/// How many live [`InitGuard`]s exist. ENet is initialised while this is above zero.
static USERS: Mutex<usize> = Mutex::new(0);

/// Keeps ENet initialised for as long as it lives. Every [`Host`](crate::Host) holds one, so any
/// number of hosts on any number of threads share one initialisation, and the last one out
/// deinitialises.
#[derive(Debug)]
pub(crate) struct InitGuard(());

impl InitGuard {
    pub(crate) fn acquire() -> Result<InitGuard> {
        let mut users = USERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *users == 0 {
            // SAFETY: the USERS lock serialises every call of enet_initialize and
            // enet_deinitialize, and the count guarantees they alternate.
            let rc = unsafe { enet_sys::enet_initialize() };
            if rc != 0 {
                return Err(Error::Initialize);
            }
        }
        *users += 1;
        Ok(InitGuard(()))
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        let mut users = USERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *users -= 1;
        if *users == 0 {
            // SAFETY: this was the last guard, so no host exists any more; the lock serialises
            // this call with enet_initialize.
            unsafe { enet_sys::enet_deinitialize() };
        }
    }
}

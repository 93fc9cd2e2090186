//! ENet's process-wide `enet_initialize` / `enet_deinitialize`, reference counted.

use crate::{Error, Result};
use std::sync::Mutex;

/// ENet's process-wide state, under one lock.
struct Registry {
    /// How many live [`InitGuard`]s exist. ENet is initialised while this is above zero.
    users: usize,
    /// Whether ENet was ever initialised (its allocator can no longer change).
    initialised_once: bool,
    /// Whether ENet allocates through Rust's global allocator.
    through_rust: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    users: 0,
    initialised_once: false,
    through_rust: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// ENet's callback struct version for 1.3.x (`ENET_VERSION_CREATE(1, 3, 17)`).
const ENET_VERSION: u32 = (enet_sys::ENET_VERSION_MAJOR << 16)
    | (enet_sys::ENET_VERSION_MINOR << 8)
    | enet_sys::ENET_VERSION_PATCH;

/// See [`allocate_through_rust`](crate::allocate_through_rust).
pub(crate) fn route_allocations() -> bool {
    let mut registry = registry();
    if !registry.initialised_once {
        registry.through_rust = true;
    }
    registry.through_rust
}

/// Keeps ENet initialised for as long as it lives. Every [`Host`](crate::Host) holds one, so any
/// number of hosts on any number of threads share one initialisation, and the last one out
/// deinitialises.
#[derive(Debug)]
pub(crate) struct InitGuard(());

impl InitGuard {
    pub(crate) fn acquire() -> Result<InitGuard> {
        let mut registry = registry();
        if registry.users == 0 {
            registry.initialised_once = true;
            let rc = if registry.through_rust {
                let callbacks = enet_sys::ENetCallbacks {
                    malloc: Some(crate::memory::enet_alloc),
                    free: Some(crate::memory::enet_dealloc),
                    no_memory: Some(crate::memory::enet_no_memory),
                };
                // SAFETY: as below; ENet copies the callbacks, which pair (each frees only
                // what the other made) and are set before ENet's first block, since the
                // registry refuses the switch once ENet was initialised.
                unsafe { enet_sys::enet_initialize_with_callbacks(ENET_VERSION, &callbacks) }
            } else {
                // SAFETY: the registry's lock serialises every call of enet_initialize and
                // enet_deinitialize, and the count guarantees they alternate.
                unsafe { enet_sys::enet_initialize() }
            };
            if rc != 0 {
                return Err(Error::Initialize);
            }
        }
        registry.users += 1;
        Ok(InitGuard(()))
    }
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        let mut registry = registry();
        registry.users -= 1;
        if registry.users == 0 {
            // SAFETY: this was the last guard, so no host exists any more; the lock serialises
            // this call with enet_initialize.
            unsafe { enet_sys::enet_deinitialize() };
        }
    }
}

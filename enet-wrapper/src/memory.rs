//! Giving freed heap memory back to the system.
//!
//! ENet and the crates above it allocate through the C allocator. After a burst (a join storm,
//! a flood of packets) glibc's malloc keeps what was freed in its pools for reuse: a server
//! that held 100 MB for a moment stays at 100 MB resident while idle. `malloc_trim` returns
//! the free pages of every arena to the kernel.

/// Returns the C allocator's free memory to the system (glibc's `malloc_trim(0)`): after a
/// burst, the process's resident size falls back towards what it uses. Costs a walk of the
/// heap (milliseconds for hundreds of megabytes), so call it when idle after a large burst,
/// not per poll. Returns whether any memory was released; always `false` where the C library
/// is not glibc (others give memory back on their own or have no such call).
///
/// ```
/// let _ = enet_wrapper::release_free_memory();
/// ```
pub fn release_free_memory() -> bool {
    imp::trim()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    extern "C" {
        /// glibc: `int malloc_trim(size_t pad)`.
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }

    pub(super) fn trim() -> bool {
        // SAFETY: malloc_trim takes no pointer and has no precondition; glibc locks each arena
        // while it trims it, so it is safe beside other threads' allocations.
        unsafe { malloc_trim(0) != 0 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn trim() -> bool {
        false
    }
}

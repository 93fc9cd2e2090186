//! Giving freed heap memory back to the system.
//!
//! ENet and the crates above it allocate through the C allocator. After a burst (a join storm,
//! a flood of packets) glibc's malloc keeps what was freed in its pools for reuse: a server
//! that held 100 MB for a moment stays at 100 MB resident while idle. `malloc_trim` returns
//! the free pages of every arena to the kernel.

/// Returns the C allocator's free memory to the system (glibc's `malloc_trim(0)`): after a
/// burst, the process's resident size falls back towards what it uses. Costs a walk of the
/// heap (milliseconds for hundreds of megabytes), so call it when idle after a large burst,
/// not per poll. Returns whether glibc released any memory; always `false` where the C library
/// is not glibc (others give memory back on their own or have no such call). With feature
/// `mimalloc`, for programs whose global allocator is mimalloc, it first has mimalloc return
/// the calling thread's free memory (`mi_collect(true)`), which keeps it otherwise.
///
/// ```
/// let _ = enet_wrapper::release_free_memory();
/// ```
pub fn release_free_memory() -> bool {
    #[cfg(feature = "mimalloc")]
    // SAFETY: mi_collect takes no pointer; it frees and returns what the calling thread's
    // mimalloc heap holds unused, and is callable at any time (a no-op where mimalloc holds
    // nothing).
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    imp::trim()
}

/// Has ENet allocate through Rust's global allocator (`#[global_allocator]`, the system
/// allocator unless the program picks another) instead of the C library's `malloc`.
///
/// ENet allocates several blocks per packet it sends or receives. In a process with more than
/// one thread glibc's `malloc` and `free` take atomic operations on every call, which cost a
/// busy relay about a tenth of its throughput; a program that picks a thread-caching allocator
/// (such as `mimalloc`) and calls this gets that allocator for ENet's blocks too. Each block
/// carries 16 bytes more (its size, which ENet's `free` does not pass).
///
/// ENet's allocator is process-wide and cannot change while any block it made is alive, so
/// this only works before ENet is first initialised (before the first [`Host`](crate::Host)).
/// Returns whether ENet now allocates through Rust (also `true` if it already did).
///
/// ```
/// // At the start of `main`, before any host exists.
/// let _ = enet_wrapper::allocate_through_rust();
/// ```
pub fn allocate_through_rust() -> bool {
    crate::init::route_allocations()
}

/// Keeps this process's memory in normal pages: no transparent huge pages (Linux's
/// `prctl(PR_SET_THP_DISABLE)`, for the whole process, memory mapped before included).
///
/// Allocators that map large regions (mimalloc asks for huge pages on them) make the kernel
/// zero a 2 MiB page at each first touch: through a 1000-client join storm that took 42% of
/// the relay server's time (the storm meshed in 1.7-2.0 s instead of 1.2 s), and its resident
/// size stayed 2 MiB-grained (13 MB idle instead of 6). Returns whether the kernel agreed;
/// `false` elsewhere than on Linux.
///
/// ```
/// let _ = enet_wrapper::avoid_huge_pages();
/// ```
pub fn avoid_huge_pages() -> bool {
    imp::no_thp()
}

/// Bytes in front of each block ENet gets: the block's whole size, padded to keep the block
/// aligned as `malloc` aligns.
const HEADER: usize = 16;

/// ENet's `malloc`: a block of `size` bytes from Rust's global allocator, or null.
pub(crate) unsafe extern "C" fn enet_alloc(size: usize) -> *mut std::os::raw::c_void {
    let Some(total) = size.checked_add(HEADER) else {
        return std::ptr::null_mut();
    };
    let Ok(layout) = std::alloc::Layout::from_size_align(total, HEADER) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout's size is at least HEADER, never zero.
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return base.cast();
    }
    // SAFETY: `base` is valid for `total` >= HEADER bytes and aligned to 16, enough for a
    // usize; the block handed out starts HEADER bytes in, inside the allocation.
    unsafe {
        base.cast::<usize>().write(total);
        base.add(HEADER).cast()
    }
}

/// ENet's `free`, for blocks from [`enet_alloc`] (ENet's allocator is only switched before it
/// made any block, so it frees no other).
pub(crate) unsafe extern "C" fn enet_dealloc(block: *mut std::os::raw::c_void) {
    if block.is_null() {
        return;
    }
    // SAFETY: `block` came from enet_alloc, so HEADER bytes before it is the start of an
    // allocation of the size stored there, made with this layout (valid: it was made once).
    unsafe {
        let base = block.cast::<u8>().sub(HEADER);
        let total = base.cast::<usize>().read();
        let layout = std::alloc::Layout::from_size_align_unchecked(total, HEADER);
        std::alloc::dealloc(base, layout);
    }
}

/// ENet's out-of-memory handler: what its default does.
pub(crate) unsafe extern "C" fn enet_no_memory() {
    std::process::abort();
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

    extern "C" {
        /// `int prctl(int option, ...)`.
        fn prctl(option: std::os::raw::c_int, ...) -> std::os::raw::c_int;
    }

    /// `PR_SET_THP_DISABLE` (linux/prctl.h).
    const PR_SET_THP_DISABLE: std::os::raw::c_int = 41;

    pub(super) fn no_thp() -> bool {
        let zero: std::os::raw::c_ulong = 0;
        // SAFETY: PR_SET_THP_DISABLE takes four unsigned long arguments (1, then zeros) and
        // no pointer; it only sets a flag of this process's memory map.
        unsafe {
            prctl(
                PR_SET_THP_DISABLE,
                1 as std::os::raw::c_ulong,
                zero,
                zero,
                zero,
            ) == 0
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn trim() -> bool {
        false
    }

    pub(super) fn no_thp() -> bool {
        false
    }
}

//! The component's global allocator: the system's (wasi-libc's dlmalloc),
//! with two exceptions.
//!
//! - Memory below the heap (a prompt handed out by `prompts::play`) is
//!   never freed, and is moved into the heap when it would be resized.
//! - The two small blocks freed last are kept, and handed out again for
//!   the same size. Every media frame the host lowers into the guest takes
//!   an allocation for its payload (`handle-media`; through `handle`, a
//!   second one for the event's arguments, too many to pass in registers),
//!   freed once it is handled, fifty times a second in every live call:
//!   from [`Kept`], each is a few loads and stores, where dlmalloc searches
//!   its bins and touches chunk headers that, on a busy server, have left
//!   the caches since the call's last frame.

use std::alloc::Layout;
use std::cell::UnsafeCell;

/// Blocks this big at most are kept; a frame's payload is 160 bytes.
const MAX_KEPT: usize = 512;

/// The two small blocks freed most recently, newest first.
pub(crate) struct Kept(UnsafeCell<[Option<Block>; 2]>);

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Block {
    pub ptr: *mut u8,
    pub layout: Layout,
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
impl Kept {
    pub(crate) const fn new() -> Kept {
        Kept(UnsafeCell::new([None, None]))
    }

    /// A kept block of `layout`'s size, if one is aligned for it.
    pub(crate) fn take(&self, layout: Layout) -> Option<*mut u8> {
        // SAFETY: one thread (see `Sync` below), and no reference outlives this call.
        let blocks = unsafe { &mut *self.0.get() };
        let slot = blocks.iter_mut().find(|slot| {
            slot.is_some_and(|b| b.layout.size() == layout.size() && (b.ptr as usize).is_multiple_of(layout.align()))
        })?;
        slot.take().map(|b| b.ptr)
    }

    /// Keeps a freed block: the caller frees what comes back (the block
    /// itself when it is too big to keep, or the oldest kept one).
    pub(crate) fn keep(&self, block: Block) -> Option<Block> {
        if block.layout.size() > MAX_KEPT {
            return Some(block);
        }
        // SAFETY: as in `take`.
        let blocks = unsafe { &mut *self.0.get() };
        if blocks[0].is_none() {
            blocks[0] = Some(block);
            return None;
        }
        let oldest = blocks[1].take();
        blocks[1] = blocks[0].replace(block);
        oldest
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    use std::alloc::{GlobalAlloc, Layout, System};

    use super::{Block, Kept};

    unsafe extern "C" {
        /// Where the heap begins: the linker puts the data (and the shadow
        /// stack) below it.
        static __heap_base: u8;
    }

    fn below_heap(ptr: *mut u8) -> bool {
        (ptr as usize) < &raw const __heap_base as usize
    }

    /// A component runs on one thread: wasm32 without threads.
    struct OneThread(Kept);
    // SAFETY: no other thread exists to share it with.
    unsafe impl Sync for OneThread {}

    static KEPT: OneThread = OneThread(Kept::new());

    pub struct Allocator;

    // SAFETY: every block comes from `System` (kept ones too) and goes back to
    // it, except memory below the heap, which is never freed and is copied
    // into a block of `System`'s when it is resized.
    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match KEPT.0.take(layout) {
                Some(ptr) => ptr,
                // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
                None => unsafe { System.alloc(layout) },
            }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's layout, as `GlobalAlloc::alloc_zeroed` requires.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if below_heap(ptr) {
                return;
            }
            if let Some(freed) = KEPT.0.keep(Block { ptr, layout }) {
                // SAFETY: a block `System` allocated with this layout, freed once.
                unsafe { System.dealloc(freed.ptr, freed.layout) }
            }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // A block from `KEPT` came from `System`: it resizes as any other.
            if !below_heap(ptr) {
                // SAFETY: a block of `System`'s with this layout (see above).
                return unsafe { System.realloc(ptr, layout, new_size) };
            }
            // SAFETY: `new_size` and the align come from a valid layout, as
            // `GlobalAlloc::realloc` requires of its caller.
            let moved = unsafe { System.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
            if !moved.is_null() {
                // SAFETY: both blocks hold at least that many bytes, and a new
                // block cannot overlap the data below the heap.
                unsafe { std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
            }
            moved
        }
    }

    #[global_allocator]
    static ALLOCATOR: Allocator = Allocator;
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, System};

    use super::*;

    fn block(size: usize) -> Block {
        let layout = Layout::from_size_align(size, 1).unwrap();
        // SAFETY: a valid, non-zero layout.
        Block { ptr: unsafe { System.alloc(layout) }, layout }
    }

    fn free(block: Option<Block>) {
        if let Some(b) = block {
            // SAFETY: allocated by `block` with this layout, freed once.
            unsafe { System.dealloc(b.ptr, b.layout) }
        }
    }

    #[test]
    fn the_two_small_blocks_freed_last_are_handed_out_again_once_for_their_size() {
        let kept = Kept::new();
        let frame = Layout::from_size_align(160, 1).unwrap();
        let args = Layout::from_size_align(64, 1).unwrap();
        assert_eq!(kept.take(frame), None, "nothing kept yet");
        let (payload, arguments) = (block(160), block(64));
        assert_eq!(kept.keep(payload), None);
        assert_eq!(kept.keep(arguments), None);
        assert_eq!(kept.take(Layout::from_size_align(161, 1).unwrap()), None, "only for the same size");
        assert_eq!(kept.take(frame), Some(payload.ptr));
        assert_eq!(kept.take(frame), None, "handed out once");
        assert_eq!(kept.take(args), Some(arguments.ptr));
        free(Some(payload));
        free(Some(arguments));

        let big = block(MAX_KEPT + 1);
        assert_eq!(kept.keep(big), Some(big), "too big to keep: the caller frees it");
        free(Some(big));
        let (a, b, c) = (block(16), block(32), block(48));
        assert_eq!(kept.keep(a), None);
        assert_eq!(kept.keep(b), None);
        assert_eq!(kept.keep(c), Some(a), "the oldest makes room");
        assert_eq!(kept.take(Layout::from_size_align(16, 1).unwrap()), None);
        let wide = Layout::from_size_align(48, 64).unwrap();
        if !(c.ptr as usize).is_multiple_of(64) {
            assert_eq!(kept.take(wide), None, "only when aligned for the request");
        }
        free(Some(a));
        free(kept.take(Layout::from_size_align(32, 1).unwrap()).map(|ptr| Block { ptr, ..b }));
        free(kept.take(Layout::from_size_align(48, 1).unwrap()).map(|ptr| Block { ptr, ..c }));
    }
}

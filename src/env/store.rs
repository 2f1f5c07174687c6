//! Storage of a day's market data on transparent huge pages.
//!
//! Each environment reads a bar record and a feature row per step from its own day. With
//! thousands of environments spread over hundreds of days, nearly every access lands on a
//! different 4 KiB page, more pages than the TLB holds, and each miss is a page walk (a
//! nested one in a virtual machine). A day held in 2 MiB pages needs a 512th of the TLB
//! entries.
//!
//! [`HugeBuf`] is a zeroed allocation aligned to 2 MiB and, on Linux, advised
//! `MADV_HUGEPAGE` before it is first touched: where transparent huge pages are enabled
//! (`always` or `madvise` mode) the kernel backs every whole 2 MiB span of it with one
//! huge page and the tail with ordinary pages. A buffer of half a huge page or more takes
//! at least a whole one; smaller buffers are ordinary allocations. [`SharedSlice`] is a typed range
//! of a buffer; a day's bar records and feature rows are two ranges of one buffer
//! ([`pack2`]), so a one-second day of ~2 MiB sits mostly on one huge page.

use bytemuck::Pod;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

/// Size and alignment of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Alignment of every range in a buffer (a cache line).
const LINE: usize = 64;

/// A zeroed, fixed-size allocation, on huge pages where the system provides them.
pub struct HugeBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: HugeBuf owns its allocation exclusively (like a Box<[u8]>); shared access only
// reads through `&self`.
unsafe impl Send for HugeBuf {}
// SAFETY: as above.
unsafe impl Sync for HugeBuf {}

impl HugeBuf {
    /// At least `bytes` zeroed bytes: from half a huge page up, at least a whole one (at
    /// most 1 MiB more than asked; a day of one-second bars is 1–3 MiB), else at least
    /// one byte.
    pub fn zeroed(bytes: usize) -> HugeBuf {
        let huge = bytes >= HUGE_PAGE / 2;
        let (size, align) = if huge {
            (bytes.max(HUGE_PAGE), HUGE_PAGE)
        } else {
            (bytes.max(1), LINE)
        };
        let layout = Layout::from_size_align(size, align).expect("a buffer size below isize::MAX");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if huge {
            // Advice only: without transparent huge pages this fails and changes nothing.
            // SAFETY: the range is this allocation, page-aligned (2 MiB).
            unsafe { libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE) };
        }
        // The first touch, after the advice: the kernel faults in huge pages here.
        // SAFETY: the allocation is `layout.size()` bytes long.
        unsafe { std::ptr::write_bytes(raw, 0, layout.size()) };
        HugeBuf { ptr, layout }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for HugeBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// A slice of `T` in a shared [`HugeBuf`]: it reads as a `&[T]`, clones by reference,
/// and grows ([`SharedSlice::push`]) by moving to a buffer of its own.
pub struct SharedSlice<T: Pod> {
    buf: Arc<HugeBuf>,
    /// Byte offset of the first element.
    off: usize,
    /// The first element (`buf`'s address plus `off`, aligned for `T`): reading the slice
    /// is two loads, which the step does per environment.
    ptr: NonNull<T>,
    len: usize,
    /// Elements the range may hold (from `off`) without moving.
    cap: usize,
    _t: std::marker::PhantomData<T>,
}

// SAFETY: a SharedSlice reads its buffer through `&self` and writes it only when it
// holds the only reference to it (`Arc::get_mut`), like `Arc<[T]>` with `T: Pod`.
unsafe impl<T: Pod> Send for SharedSlice<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Sync for SharedSlice<T> {}

impl<T: Pod> SharedSlice<T> {
    /// Elements `off..` (byte offset) of `buf`, `len` of them, room for `cap`.
    fn new(buf: Arc<HugeBuf>, off: usize, len: usize, cap: usize) -> SharedSlice<T> {
        assert!(
            off.is_multiple_of(align_of::<T>()) && off + cap * size_of::<T>() <= buf.layout.size(),
            "a range inside its buffer, aligned for its type"
        );
        // SAFETY: `off` is inside the allocation (checked above), and the allocation is
        // aligned to at least a cache line, so `ptr` is aligned for `T`.
        let ptr = unsafe { NonNull::new_unchecked(buf.ptr.as_ptr().add(off).cast::<T>()) };
        SharedSlice {
            buf,
            off,
            ptr,
            len,
            cap,
            _t: std::marker::PhantomData,
        }
    }

    /// A copy of `items` in a buffer of its own.
    pub fn from_slice(items: &[T]) -> SharedSlice<T> {
        let mut s = SharedSlice::with_capacity(items.len());
        s.extend_from_slice(items);
        s
    }

    /// An empty slice with room for `cap` elements.
    pub fn with_capacity(cap: usize) -> SharedSlice<T> {
        SharedSlice::new(Arc::new(HugeBuf::zeroed(cap * size_of::<T>())), 0, 0, cap)
    }

    /// Appends `items`, moving to a buffer of its own (twice as large) when this one is
    /// shared or full.
    pub fn extend_from_slice(&mut self, items: &[T]) {
        let need = self.len + items.len();
        if need > self.cap || Arc::get_mut(&mut self.buf).is_none() {
            let mut grown = SharedSlice::with_capacity(need.max(2 * self.len).max(64));
            grown.write(0, self);
            grown.len = self.len;
            *self = grown;
        }
        let at = self.len;
        self.write(at, items);
        self.len = need;
        debug_assert!(self.len <= self.cap);
    }

    pub fn push(&mut self, item: T) {
        self.extend_from_slice(std::slice::from_ref(&item));
    }

    /// Copies `items` to elements `at..` (within the capacity; the buffer must not be
    /// shared).
    fn write(&mut self, at: usize, items: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(items);
        let start = self.off + at * size_of::<T>();
        let buf = Arc::get_mut(&mut self.buf).expect("a buffer of its own");
        buf.bytes_mut()[start..start + bytes.len()].copy_from_slice(bytes);
    }
}

/// Two slices in one buffer, each starting on a cache line, filled by `fill`.
pub fn pack2<A: Pod, B: Pod>(
    a_len: usize,
    b_len: usize,
    fill: impl FnOnce(&mut [A], &mut [B]),
) -> (SharedSlice<A>, SharedSlice<B>) {
    let a_bytes = a_len * size_of::<A>();
    let b_off = a_bytes.next_multiple_of(LINE);
    let mut buf = HugeBuf::zeroed(b_off + b_len * size_of::<B>());
    {
        let (a, b) = buf.bytes_mut().split_at_mut(b_off);
        fill(
            bytemuck::cast_slice_mut(&mut a[..a_bytes]),
            bytemuck::cast_slice_mut(&mut b[..b_len * size_of::<B>()]),
        );
    }
    let buf = Arc::new(buf);
    (
        SharedSlice::new(buf.clone(), 0, a_len, a_len),
        SharedSlice::new(buf, b_off, b_len, b_len),
    )
}

impl<T: Pod> std::ops::Deref for SharedSlice<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is aligned and `len` elements from it lie inside the buffer
        // (checked in `new`, and `len <= cap`); the buffer is initialized (zeroed, then
        // written) and lives while `self` holds it. Writes need the only reference to it.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Pod> Clone for SharedSlice<T> {
    fn clone(&self) -> Self {
        SharedSlice::new(self.buf.clone(), self.off, self.len, self.cap)
    }
}

impl<T: Pod> Default for SharedSlice<T> {
    fn default() -> Self {
        SharedSlice::with_capacity(0)
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for SharedSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Pod + PartialEq> PartialEq for SharedSlice<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Pod> From<Vec<T>> for SharedSlice<T> {
    fn from(v: Vec<T>) -> Self {
        SharedSlice::from_slice(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_slices_read_back_what_was_filled_and_start_on_lines() {
        let (a, b) = pack2::<u32, f64>(5, 3, |a, b| {
            a.copy_from_slice(&[1, 2, 3, 4, 5]);
            b.copy_from_slice(&[0.5, -1.0, 2.25]);
        });
        assert_eq!(&*a, &[1, 2, 3, 4, 5]);
        assert_eq!(&*b, &[0.5, -1.0, 2.25]);
        assert_eq!(b.as_ptr() as usize % LINE, 0);
    }

    #[test]
    fn a_shared_slice_grows_into_its_own_buffer_and_leaves_the_other_intact() {
        let (a, b) = pack2::<u16, u16>(2, 2, |a, b| {
            a.copy_from_slice(&[1, 2]);
            b.copy_from_slice(&[7, 8]);
        });
        let mut a2 = a.clone();
        for v in 3..200 {
            a2.push(v);
        }
        assert_eq!(&*a, &[1, 2]);
        assert_eq!(&*b, &[7, 8]);
        assert_eq!(a2.len(), 199);
        assert!(a2.iter().copied().eq(1..200));
        let mut e = SharedSlice::<u64>::default();
        assert!(e.is_empty());
        e.extend_from_slice(&[9; 100]);
        assert_eq!(&*e, &[9; 100][..]);
    }

    #[test]
    fn large_buffers_are_aligned_to_huge_pages() {
        let big = HugeBuf::zeroed(HUGE_PAGE + 4096);
        assert_eq!(big.ptr.as_ptr() as usize % HUGE_PAGE, 0);
        // SAFETY: test of a live, zeroed allocation of that size.
        let bytes = unsafe { std::slice::from_raw_parts(big.ptr.as_ptr(), big.layout.size()) };
        assert!(bytes.iter().all(|&b| b == 0));
        // Half a huge page takes a whole one; less stays an ordinary allocation.
        let half = HugeBuf::zeroed(HUGE_PAGE / 2);
        assert_eq!(half.layout.size(), HUGE_PAGE);
        assert_eq!(half.ptr.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(
            HugeBuf::zeroed(HUGE_PAGE / 2 - 1).layout.size(),
            HUGE_PAGE / 2 - 1
        );
        let small = HugeBuf::zeroed(100);
        assert_eq!(small.ptr.as_ptr() as usize % LINE, 0);
    }
}

//! The few system calls procfs files cannot answer: the clock tick rate and page size
//! (`sysconf`), and filesystem sizes (`statvfs`). The only `unsafe` code of the receiver.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Clock ticks per second (`USER_HZ`), the unit of CPU times in `/proc/stat` and
/// `/proc/<pid>/stat`; 100 when the system does not say.
pub(crate) fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes an integer name, reads no memory of ours and has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(100)
}

/// The memory page size in bytes, the unit of `/proc/<pid>/statm`; 4096 when unknown.
pub(crate) fn page_size() -> u64 {
    // SAFETY: as above, sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(v).ok().filter(|v| *v > 0).unwrap_or(4096)
}

/// Block counts of one mounted filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FsSpace {
    /// Size of the filesystem (`f_blocks`).
    pub total: u64,
    /// Free blocks, including those reserved for root (`f_bfree`).
    pub free_all: u64,
    /// Free blocks an unprivileged user may use (`f_bavail`).
    pub available: u64,
}

/// `statvfs(2)` of the filesystem holding `path`.
pub(crate) fn statvfs(path: &Path) -> io::Result<FsSpace> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call, and `st` points
    // to writable memory of the right type and size, which statvfs fills on success.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised every field of `st`.
    let st = unsafe { st.assume_init() };
    // The field types are narrower than u64 on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let (block, blocks, bfree, bavail) = (
        if st.f_frsize > 0 {
            st.f_frsize
        } else {
            st.f_bsize
        } as u64,
        st.f_blocks as u64,
        st.f_bfree as u64,
        st.f_bavail as u64,
    );
    let bytes = |blocks: u64| blocks.saturating_mul(block);
    Ok(FsSpace {
        total: bytes(blocks),
        free_all: bytes(bfree),
        available: bytes(bavail),
    })
}

//! Positional reads into a buffer's unused capacity: the bytes a fetch serves are read from
//! the segment file straight into memory the kernel fills, never zero-filled first (the
//! zero-fill was one extra write of every byte a consumer fetched).

use std::fs::File;
use std::io;

/// Appends the `len` bytes at `position` of `file` to `buf` (`pread`, retried on `EINTR`
/// and short reads). Reads into `buf`'s spare capacity, so reserve first: a call may read
/// past `len` into the spare capacity and drops what it read beyond. An `UnexpectedEof`
/// error if the file ends first.
pub fn read_exact_appending(
    file: &File,
    buf: &mut Vec<u8>,
    len: usize,
    mut position: u64,
) -> io::Result<()> {
    let target = buf.len() + len;
    buf.reserve(len);
    while buf.len() < target {
        match rustix::io::pread(file, rustix::buffer::spare_capacity(buf), position) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ends before {len} bytes could be read"),
                ));
            }
            Ok(read) => position += read as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    buf.truncate(target);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn reads_ranges_back_to_back_without_bytes_past_them() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let file = file_of(&data);
        let mut buf = Vec::with_capacity(300);
        read_exact_appending(&file, &mut buf, 100, 50).unwrap();
        // Spare capacity is left: the read may go past 100 bytes but must keep only 100.
        assert_eq!(buf, data[50..150]);
        read_exact_appending(&file, &mut buf, 200, 9_000).unwrap();
        assert_eq!(buf[..100], data[50..150]);
        assert_eq!(buf[100..], data[9_000..9_200]);
    }

    #[test]
    fn a_file_shorter_than_the_range_is_an_unexpected_eof() {
        let file = file_of(&[1, 2, 3]);
        let mut buf = Vec::new();
        let err = read_exact_appending(&file, &mut buf, 10, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn zero_bytes_read_nothing() {
        let file = file_of(&[]);
        let mut buf = vec![7];
        read_exact_appending(&file, &mut buf, 0, 0).unwrap();
        assert_eq!(buf, [7]);
    }
}

//! A dry run of candle's unpickler over the `data.pkl` of a
//! `pytorch_model.bin`, before candle reads it for real. It builds nothing:
//! it follows candle's stack machine (same opcodes, same stack and memo
//! effects) with only the size of each object, and refuses the two inputs
//! that make candle exhaust memory (both found by `cargo fuzz run
//! pytorch_bin`, candle-core 0.11.1):
//! - a string whose length prefix runs past the pickle: candle allocates the
//!   declared length (up to 4 GiB) before reading it;
//! - a pickle that expands: candle deep-copies a memo entry on every `GET`
//!   and on every `PUT`, so a few hundred bytes that build a tuple of two
//!   copies of the previous one, 40 times, ask for 2^40 objects.
//!
//! Anything else candle refuses (unknown opcode, empty stack, missing memo
//! entry) ends the dry run without an error: candle reports it.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Objects and string bytes a pickle may make candle allocate in all (copies
/// included): a Marian checkpoint's state dict needs some tens of thousands.
const MAX_OBJECTS: u64 = 1 << 24;

/// Checks every `*data.pkl` in the archive at `path` (as candle finds them).
/// Errors that are not about the pickle (not a zip file, unreadable) are
/// left for candle to report.
pub(super) fn check_archive(path: &Path) -> Result<(), String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let Ok(mut zip) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Ok(());
    };
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .filter(|n| n.ends_with("data.pkl"))
        .collect();
    for name in names {
        let Ok(mut entry) = zip.by_name(&name) else {
            continue;
        };
        // Check what candle would read even when reading fails at the end:
        // the zip reader reports a bad CRC only at end of entry, which
        // candle, stopping at STOP, never reaches (found by fuzzing).
        let mut pickle = Vec::new();
        let _ = entry.read_to_end(&mut pickle);
        check(&pickle).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// One stack entry: a mark, or an object of `size` objects and bytes.
#[derive(Clone, Copy, PartialEq)]
enum Item {
    Mark,
    Object(u64),
}

impl Item {
    fn size(self) -> u64 {
        match self {
            Item::Object(s) => s,
            // candle pops a mark like any object.
            Item::Mark => 1,
        }
    }
}

#[derive(Default)]
struct DryRun {
    stack: Vec<Item>,
    memo: HashMap<u32, u64>,
    /// Objects and string bytes allocated so far (copies included).
    built: u64,
}

impl DryRun {
    fn allocate(&mut self, n: u64) -> Result<(), String> {
        self.built = self.built.saturating_add(n);
        if self.built > MAX_OBJECTS {
            return Err(format!(
                "the pickle expands to more than {MAX_OBJECTS} objects (copies of memoized \
                 objects); not a PyTorch state dict"
            ));
        }
        Ok(())
    }

    /// A new object of `size`, all of it allocated now (a leaf or a copy).
    fn push_new(&mut self, size: u64) -> Result<(), String> {
        self.allocate(size)?;
        self.stack.push(Item::Object(size));
        Ok(())
    }

    /// A container of objects popped from the stack (moved, not copied).
    fn push_moved(&mut self, items: u64) -> Result<(), String> {
        self.allocate(1)?;
        self.stack.push(Item::Object(1 + items));
        Ok(())
    }

    fn pop(&mut self) -> Option<u64> {
        self.stack.pop().map(Item::size)
    }

    /// Sum of the sizes above the last mark, mark removed.
    fn pop_to_mark(&mut self) -> Option<u64> {
        let at = self.stack.iter().rposition(|i| *i == Item::Mark)?;
        let size = self.stack[at + 1..].iter().map(|i| i.size()).sum();
        self.stack.truncate(at);
        Some(size)
    }

    /// Moves `items` into the list or dict on top of the stack.
    fn grow_last(&mut self, items: u64) -> Option<()> {
        match self.stack.last_mut()? {
            Item::Object(s) => *s += items,
            Item::Mark => return None,
        }
        Some(())
    }
}

/// `n` bytes at `*at`, moving past them.
fn take<'a>(p: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = p.get(*at..at.checked_add(n)?)?;
    *at += n;
    Some(s)
}

fn u32_at(p: &[u8], at: &mut usize) -> Option<u32> {
    take(p, at, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// The dry run of one pickle.
pub(super) fn check(p: &[u8]) -> Result<(), String> {
    let mut run = DryRun::default();
    let mut at = 0;
    while let Some(false) = step(&mut run, p, &mut at)? {}
    Ok(())
}

/// One opcode: `Some(true)` at STOP, `None` where candle stops with an
/// error of its own, `Err` for the two refusals.
fn step(run: &mut DryRun, p: &[u8], at: &mut usize) -> Result<Option<bool>, String> {
    macro_rules! need {
        ($e:expr) => {
            match $e {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    let start = *at;
    let op = need!(take(p, at, 1))[0];
    match op {
        b'.' => return Ok(Some(true)),
        // PROTO
        0x80 => {
            need!(take(p, at, 1));
        }
        // GLOBAL: module and class names, each up to a newline.
        b'c' => {
            let mut len = 0;
            for _ in 0..2 {
                let line = need!(p[*at..].iter().position(|&b| b == b'\n'));
                len += line as u64;
                *at += line + 1;
            }
            run.push_new(1 + len)?;
        }
        // BININT1, BININT2, BININT, BINFLOAT
        b'K' | b'M' | b'J' | b'G' => {
            let n = match op {
                b'K' => 1,
                b'M' => 2,
                b'J' => 4,
                _ => 8,
            };
            need!(take(p, at, n));
            run.push_new(1)?;
        }
        // LONG1
        0x8a => {
            let n = need!(take(p, at, 1))[0];
            need!(take(p, at, usize::from(n)));
            run.push_new(1)?;
        }
        // BINUNICODE
        b'X' => {
            let len = need!(u32_at(p, at));
            let left = p.len() - *at;
            if len as usize > left {
                return Err(format!(
                    "a string at byte {start} declares {len} bytes, but only {left} follow"
                ));
            }
            *at += len as usize;
            run.push_new(1 + u64::from(len))?;
        }
        // NONE, NEWTRUE, NEWFALSE, EMPTY_DICT (and DICT, which candle reads
        // as EMPTY_DICT), EMPTY_TUPLE, EMPTY_LIST
        b'N' | 0x88 | 0x89 | b'}' | b'd' | b')' | b']' => run.push_new(1)?,
        // MARK
        b'(' => run.stack.push(Item::Mark),
        // BINPERSID
        b'Q' => {
            let id = need!(run.pop());
            run.push_moved(id)?;
        }
        // TUPLE
        b't' => {
            let items = need!(run.pop_to_mark());
            run.push_moved(items)?;
        }
        // TUPLE1, TUPLE2, TUPLE3
        0x85..=0x87 => {
            let mut items = 0;
            for _ in 0..=(op - 0x85) {
                items += need!(run.pop());
            }
            run.push_moved(items)?;
        }
        // REDUCE, BUILD, NEWOBJ: two objects into one.
        b'R' | b'b' | 0x81 => {
            let a = need!(run.pop());
            let b = need!(run.pop());
            run.push_moved(a + b)?;
        }
        // APPEND
        b'a' => {
            let v = need!(run.pop());
            need!(run.grow_last(v));
        }
        // SETITEM
        b's' => {
            let v = need!(run.pop());
            let k = need!(run.pop());
            need!(run.grow_last(k + v));
        }
        // APPENDS, SETITEMS
        b'e' | b'u' => {
            let items = need!(run.pop_to_mark());
            need!(run.grow_last(items));
        }
        // BINGET, LONG_BINGET: candle pushes a deep copy of the entry.
        b'h' | b'j' => {
            let id = if op == b'h' {
                u32::from(need!(take(p, at, 1))[0])
            } else {
                need!(u32_at(p, at))
            };
            let size = *need!(run.memo.get(&id));
            run.push_new(size)?;
        }
        // BINPUT, LONG_BINPUT: candle stores a deep copy of the top.
        b'q' | b'r' => {
            let id = if op == b'q' {
                u32::from(need!(take(p, at, 1))[0])
            } else {
                need!(u32_at(p, at))
            };
            let size = need!(run.stack.last()).size();
            run.allocate(size)?;
            run.memo.insert(id, size);
        }
        _ => return Ok(None),
    }
    Ok(Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_longer_than_the_pickle_is_refused() {
        // Minimised from `cargo fuzz run pytorch_bin` (an OOM: candle
        // allocated the 4 GiB the length prefix declares).
        let e = check(b"X\xe5\xe5\xff\xff").unwrap_err();
        assert_eq!(
            e,
            "a string at byte 0 declares 4294960613 bytes, but only 0 follow"
        );
        check(b"X\x02\x00\x00\x00ab.").unwrap();
    }

    #[test]
    fn a_pickle_that_doubles_itself_is_refused() {
        // 292 bytes asking candle for 2^40 objects (each GET deep-copies).
        let mut p = b"\x80\x02X\x02\x00\x00\x00abq\x00".to_vec();
        for _ in 0..40 {
            p.extend_from_slice(b"h\x00h\x00\x86q\x00");
        }
        p.push(b'.');
        let e = check(&p).unwrap_err();
        assert!(e.starts_with("the pickle expands to more than"), "{e}");
        // Twelve doublings are fine.
        let mut p = b"\x80\x02X\x02\x00\x00\x00abq\x00".to_vec();
        for _ in 0..12 {
            p.extend_from_slice(b"h\x00h\x00\x86q\x00");
        }
        p.push(b'.');
        check(&p).unwrap();
    }

    #[test]
    fn the_fixture_pickle_passes() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian/pytorch_model.bin");
        check_archive(&path).unwrap();
    }
}

//! Audit blocks: the `audit` table keeps an org's entries [`BLOCK_ENTRIES`] to a row, keyed
//! by the position of the block's first entry, rather than a row per entry. A row insert is
//! the audit file's main cost (a B-tree descent, page splits, the pages a commit writes), and
//! an org's entries are written and read in runs of neighbours, newest first: one row per 16
//! of them cuts the inserts of a rebuild 16-fold. A reader of one entry reads its block (a
//! page of about 8 KiB rather than 4), which is why blocks are not larger.
//!
//! A block is a run of frames, oldest first: the position (8 bytes, big-endian), the entry's
//! length (4 bytes, big-endian), the entry (postcard). An org's n-th entry is in its block
//! n / 16 whatever the batches were, so a rebuilt file holds the very rows the live one does.

use serde::Serialize;

use crate::store::{ViewError, storage_problem};

/// How many entries a block holds once full.
pub(crate) const BLOCK_ENTRIES: usize = 16;

/// A frame's header: the position and the entry's length.
const HEADER: usize = 12;

/// Appends `row` at `seq` to `block`, encoded in place (no buffer of its own per entry).
pub(crate) fn push<T: Serialize>(block: &mut Vec<u8>, seq: u64, row: &T) -> Result<(), ViewError> {
    let start = block.len();
    block.extend_from_slice(&seq.to_be_bytes());
    block.extend_from_slice(&[0; 4]);
    *block = postcard::to_extend(row, std::mem::take(block)).map_err(ViewError::Corrupt)?;
    let len = u32::try_from(block.len() - start - HEADER)
        .map_err(|_| storage_problem("an audit entry longer than 4 GiB"))?;
    block[start + 8..start + HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The entries of `block`, whose key is the position `first`, oldest first: each one's
/// position and its encoded entry.
pub(crate) fn entries(block: &[u8], first: u64) -> Result<Vec<(u64, &[u8])>, ViewError> {
    Frames::new(block, first).collect()
}

/// The encoded entry at `seq` in `block` (keyed by `first`), if it holds one; its frames
/// are walked, not collected.
pub(crate) fn find(block: &[u8], first: u64, seq: u64) -> Result<Option<&[u8]>, ViewError> {
    for frame in Frames::new(block, first) {
        let (at, entry) = frame?;
        if at == seq {
            return Ok(Some(entry));
        }
        if at > seq {
            break;
        }
    }
    Ok(None)
}

/// A block's frames, checked as they are read: the first at the block's key, each after
/// the one before. A block that breaks either (a damaged or altered file) is a storage
/// error, not entries in the wrong place or order.
struct Frames<'a> {
    rest: &'a [u8],
    first: u64,
    last: Option<u64>,
}

impl<'a> Frames<'a> {
    fn new(block: &'a [u8], first: u64) -> Self {
        Self {
            rest: block,
            first,
            last: None,
        }
    }

    fn read(&mut self) -> Result<(u64, &'a [u8]), ViewError> {
        let (seq, entry, after) = frame(self.rest)?;
        match self.last {
            None if seq != self.first => {
                return Err(storage_problem(
                    "an audit block whose first entry is not at its key's position",
                ));
            }
            Some(last) if seq <= last => {
                return Err(storage_problem(
                    "an audit block whose positions do not grow",
                ));
            }
            _ => {}
        }
        self.last = Some(seq);
        self.rest = after;
        Ok((seq, entry))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(u64, &'a [u8]), ViewError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let read = self.read();
        if read.is_err() {
            // Nothing after a broken frame can be trusted.
            self.rest = &[];
        }
        Some(read)
    }
}

/// The first frame of `frames`: its position, its entry and the frames after it.
fn frame(frames: &[u8]) -> Result<(u64, &[u8], &[u8]), ViewError> {
    let torn = || storage_problem("a torn audit block");
    let (seq, len) = header(frames).ok_or_else(torn)?;
    let end = HEADER
        .checked_add(len)
        .filter(|end| *end <= frames.len())
        .ok_or_else(torn)?;
    Ok((seq, &frames[HEADER..end], &frames[end..]))
}

fn header(frame: &[u8]) -> Option<(u64, usize)> {
    let seq = u64::from_be_bytes(frame.get(..8)?.try_into().ok()?);
    let len = u32::from_be_bytes(frame.get(8..HEADER)?.try_into().ok()?);
    Some((seq, usize::try_from(len).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_back_its_entries_in_order() {
        let mut block = Vec::new();
        push(&mut block, 7, &"seven").unwrap();
        push(&mut block, 9, &"").unwrap();
        push(&mut block, u64::MAX, &"last").unwrap();
        let encoded = |text: &str| postcard::to_stdvec(text).unwrap();
        let read: Vec<(u64, Vec<u8>)> = entries(&block, 7)
            .unwrap()
            .into_iter()
            .map(|(seq, entry)| (seq, entry.to_vec()))
            .collect();
        assert_eq!(
            read,
            [
                (7, encoded("seven")),
                (9, encoded("")),
                (u64::MAX, encoded("last"))
            ]
        );
        assert!(entries(&[], 1).unwrap().is_empty());
        assert_eq!(find(&block, 7, 9).unwrap(), Some(encoded("").as_slice()));
        assert_eq!(find(&block, 7, 8).unwrap(), None);
    }

    #[test]
    fn a_torn_block_is_an_error_not_a_panic() {
        let mut block = Vec::new();
        push(&mut block, 1, &"entry").unwrap();
        for cut in 1..block.len() {
            assert!(entries(&block[..cut], 1).is_err(), "cut at {cut}");
            assert!(find(&block[..cut], 1, 1).is_err(), "cut at {cut}");
        }
        let mut long = block.clone();
        long[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(entries(&long, 1).is_err());
    }

    /// A block under another key, or with its frames out of order (a damaged or altered
    /// file), is refused, never read as entries at the wrong positions.
    #[test]
    fn a_block_must_start_at_its_key_and_grow() {
        let mut block = Vec::new();
        push(&mut block, 17, &"a").unwrap();
        push(&mut block, 18, &"b").unwrap();
        assert_eq!(entries(&block, 17).unwrap().len(), 2);
        assert!(entries(&block, 1).is_err(), "under another key");
        assert!(find(&block, 1, 18).is_err(), "under another key");
        for (second, what) in [(17, "repeated"), (3, "going back")] {
            let mut bad = Vec::new();
            push(&mut bad, 17, &"a").unwrap();
            push(&mut bad, second, &"b").unwrap();
            assert!(entries(&bad, 17).is_err(), "{what}");
            assert!(find(&bad, 17, 40).is_err(), "{what}");
        }
    }
}

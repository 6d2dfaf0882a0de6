//! Inputs found by the cargo-fuzz targets in fuzz/ (see fuzz/README.md),
//! minimised, through the public API: each must be a clear error, never a
//! panic. Regressions of code with unit tests live next to it
//! (src/marian/config.rs, src/marian/checkpoint/safetensors.rs).

use std::path::Path;

use candle_core::{DType, Device};
use tarjama::document::{Document, TextEncoding};
use tarjama::marian::{MarianConfig, MarianModel};

fn fixture_config() -> MarianConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian");
    MarianConfig::from_file(&dir.join("config.json")).unwrap()
}

/// torch.save's protocol-2 pickle of a one-tensor state dict: a float
/// tensor `name` of `shape` (contiguous) at `offset` in storage `0`.
fn state_dict(name: &str, offset: i32, shape: &[i32]) -> Vec<u8> {
    let uni = |s: &str| [&[b'X'][..], &(s.len() as u32).to_le_bytes(), s.as_bytes()].concat();
    let int = |n: i32| [&[b'J'][..], &n.to_le_bytes()].concat();
    let tuple = |items: Vec<Vec<u8>>| [vec![b'('], items.concat(), vec![b't']].concat();
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let numel = shape.iter().map(|&x| i64::from(x)).product::<i64>();
    let numel = numel.min(i32::MAX.into()) as i32;
    [
        &b"\x80\x02}("[..],
        &uni(name),
        b"ctorch._utils\n_rebuild_tensor_v2\n(",
        &tuple(vec![
            uni("storage"),
            b"ctorch\nFloatStorage\n".to_vec(),
            uni("0"),
            uni("cpu"),
            int(numel),
        ]),
        b"Q",
        &int(offset),
        &tuple(shape.iter().map(|&x| int(x)).collect()),
        &tuple(strides.iter().map(|&x| int(x)).collect()),
        b"\x89ccollections\nOrderedDict\n)RtRu.",
    ]
    .concat()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                crc >> 1 ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive of `files`, stored (uncompressed) like torch.save's, with
/// checksums computed by `crc`.
fn stored_zip(files: &[(&str, &[u8])], crc: fn(&[u8]) -> u32) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let offset = out.len() as u32;
        let (crc, len) = (crc(data), data.len() as u32);
        // version 20, no flags, stored, no time or date.
        let common = [
            &20u16.to_le_bytes()[..],
            &[0; 8],
            &crc.to_le_bytes(),
            &len.to_le_bytes(),
            &len.to_le_bytes(),
            &(name.len() as u16).to_le_bytes(),
            &[0; 2],
        ]
        .concat();
        out.extend(
            [
                &0x0403_4b50u32.to_le_bytes()[..],
                &common,
                name.as_bytes(),
                data,
            ]
            .concat(),
        );
        central.extend(
            [
                &0x0201_4b50u32.to_le_bytes()[..],
                &20u16.to_le_bytes(),
                &common,
                // comment length, disk, internal and external attributes.
                &[0; 10],
                &offset.to_le_bytes(),
                name.as_bytes(),
            ]
            .concat(),
        );
    }
    let (cd_offset, cd_len, n) = (out.len() as u32, central.len() as u32, files.len() as u16);
    out.extend(central);
    out.extend(
        [
            &0x0605_4b50u32.to_le_bytes()[..],
            &[0; 4],
            &n.to_le_bytes(),
            &n.to_le_bytes(),
            &cd_len.to_le_bytes(),
            &cd_offset.to_le_bytes(),
            &[0; 2],
        ]
        .concat(),
    );
    out
}

/// Loads `pickle` (plus 32 floats of storage `0`) as a pytorch_model.bin.
fn load_pickle(pickle: &[u8]) -> String {
    load_pickle_with_crc(pickle, crc32)
}

fn load_pickle_with_crc(pickle: &[u8], crc: fn(&[u8]) -> u32) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("pytorch_model.bin");
    let storage = [0u8; 128];
    let files = [
        ("archive/data.pkl", pickle),
        ("archive/data/0", &storage[..]),
    ];
    std::fs::write(&path, stored_zip(&files, crc)).unwrap();
    let err = MarianModel::load(fixture_config(), &path, DType::F32, &Device::Cpu)
        .expect_err("a malformed checkpoint loads");
    let err = err.to_string();
    assert!(err.contains("pytorch_model.bin"), "{err}");
    err
}

/// `cargo fuzz run pytorch_bin`: a negative storage offset made candle's
/// unpickler (candle-core 0.11.1 pickle.rs, `offset * dtype size`) panic
/// with an overflow, with overflow checks on. Minimised: a 177-byte pickle.
#[test]
fn a_negative_storage_offset_is_an_error() {
    let pickle = state_dict("model.shared.weight", -1, &[8, 4]);
    assert_eq!(pickle.len(), 177);
    let err = load_pickle(&pickle);
    if cfg!(debug_assertions) {
        assert!(err.contains("malformed PyTorch pickle"), "{err}");
    }
}

/// The first tensor the loader reads.
const FIRST: &str = "model.encoder.layers.0.self_attn.q_proj.weight";

/// A tensor whose declared shape is enormous: refused by its shape before
/// its data is allocated (which aborted on allocation failure).
#[test]
fn an_enormous_declared_shape_is_refused_before_reading() {
    let pickle = state_dict(FIRST, 0, &[1 << 30, 1 << 30]);
    let err = load_pickle(&pickle);
    assert!(
        err.contains(&format!(
            "`{FIRST}`: has shape [1073741824, 1073741824], expected [32, 32]"
        )),
        "{err}"
    );
}

/// The storage layout the pickles above use is the one the loader reads:
/// the same archive with the right shape gets past the pickle (to the next
/// missing tensor).
#[test]
fn the_hand_written_archive_is_read() {
    let pickle = state_dict(FIRST, 0, &[8, 4]);
    let err = load_pickle(&pickle);
    assert!(
        err.contains(&format!("`{FIRST}`: has shape [8, 4], expected [32, 32]")),
        "{err}"
    );
}

/// `cargo fuzz run pytorch_bin` (an OOM, minimised to 5 bytes): a string's
/// length prefix of ~4 GiB, which candle allocated before reading it.
#[test]
fn a_string_longer_than_the_pickle_is_refused() {
    let err = load_pickle(b"X\xe5\xe5\xff\xff");
    assert!(
        err.contains("malformed PyTorch pickle: archive/data.pkl: a string at byte 0 declares"),
        "{err}"
    );
}

/// The same in an archive whose checksums are wrong (found by fuzzing the
/// first fix): the zip reader reports a bad CRC only at the end of the
/// entry, which candle never reaches, so the check must not skip the entry.
#[test]
fn a_string_longer_than_the_pickle_is_refused_despite_a_bad_crc() {
    let err = load_pickle_with_crc(b"X\xe5\xe5\xff\xff", |_| 0);
    assert!(err.contains("a string at byte 0 declares"), "{err}");
}

/// A 292-byte pickle that doubles a tuple 40 times through the memo: candle
/// deep-copies on every GET, 2^40 objects (an OOM under the fuzzer's limit).
#[test]
fn an_expanding_pickle_is_refused() {
    let mut pickle = b"\x80\x02X\x02\x00\x00\x00abq\x00".to_vec();
    for _ in 0..40 {
        pickle.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    pickle.push(b'.');
    let err = load_pickle(&pickle);
    assert!(err.contains("the pickle expands to more than"), "{err}");
}

/// `cargo fuzz run document` (4 bytes: big5, then ` \x8b\x7e`): big5
/// decodes 0x8B 0x7E to U+20E11, which its encoder does not map back, so
/// `encoded_len` (src/document.rs) counted the 9-byte `&#134673;` it encodes
/// to instead: the sentence was placed at bytes 1..10 of a 3-byte input.
/// Any encoding whose decoding does not round-trip through `encode` is
/// affected (big5, gb18030, shift_jis, iso-2022-jp...); `auto` never picks
/// one. They are now refused: by name, and when passed directly.
#[test]
fn multi_byte_legacy_encodings_are_refused_rather_than_given_wrong_offsets() {
    let err = "big5".parse::<TextEncoding>().unwrap_err();
    assert!(err.contains("not supported"), "{err}");
    let big5 = TextEncoding::Fixed(encoding_rs::BIG5);
    match Document::decode_with("t", b" \x8b\x7e".to_vec(), big5, Document::parse) {
        Err(e) => assert!(e.to_string().contains("Big5"), "{e}"),
        Ok(doc) => {
            let s: Vec<_> = doc.sentences().map(|s| (s.start, s.end, s.text)).collect();
            panic!("decoded with offsets {s:?}");
        }
    }
    // Single-byte and UTF-16 encodings stay accepted.
    for ok in ["windows-1256", "iso-8859-6", "utf-16le", "latin1"] {
        assert!(ok.parse::<TextEncoding>().is_ok(), "{ok}");
    }
}

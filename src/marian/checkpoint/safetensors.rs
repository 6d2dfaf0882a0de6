//! Reading a safetensors checkpoint one tensor at a time with positioned
//! reads, into f32 host buffers. Memory-mapping the file (candle's default)
//! keeps every page read so far resident until loading ends, which put the
//! whole file on top of the converted weights at the peak; here a tensor's
//! bytes exist once, in its buffer, and only until it is converted. The
//! header is parsed by the `safetensors` crate.

use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, Metadata};

use super::HostTensor;

pub(super) struct Reader {
    file: File,
    path: PathBuf,
    data_start: u64,
    meta: Metadata,
}

fn err(path: &Path, msg: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{}: {msg}", path.display()))
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

impl Reader {
    pub fn open(path: &Path) -> candle_core::Result<Self> {
        let file = File::open(path).map_err(|e| err(path, e))?;
        let len = file.metadata().map_err(|e| err(path, e))?.len();
        let mut n = [0u8; 8];
        read_at(&file, &mut n, 0).map_err(|_| err(path, "too short for a safetensors header"))?;
        let n = u64::from_le_bytes(n);
        if n > 100_000_000 || 8 + n > len {
            return Err(err(path, "invalid safetensors header length"));
        }
        let mut header = vec![0u8; n as usize];
        read_at(&file, &mut header, 8).map_err(|e| err(path, e))?;
        let meta: Metadata = serde_json::from_slice(&header)
            .map_err(|e| err(path, format!("invalid safetensors header: {e}")))?;
        let data_start = 8 + n;
        // The header's offsets are validated contiguous from 0, so the last
        // tensor's end is the data's; it may be any u64 (checked add).
        let data_end = u64::try_from(meta.data_len())
            .ok()
            .and_then(|d| data_start.checked_add(d));
        if data_end.is_none_or(|end| end > len) {
            let last = meta.offset_keys().pop().unwrap_or_default();
            let end = match data_end {
                Some(end) => format!("at byte {end}"),
                None => "past byte 2^64".into(),
            };
            return Err(err(
                path,
                format!("truncated: tensor `{last}` ends {end} of a {len}-byte file"),
            ));
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            data_start,
            meta,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.meta.info(name).is_some()
    }

    /// The shape the header gives tensor `name`, before reading its data.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.meta.info(name).map(|i| i.shape.as_slice())
    }

    /// Tensor `name` as f32 (f16 and bf16 are widened).
    pub fn get(&self, name: &str) -> candle_core::Result<HostTensor> {
        let info = self
            .meta
            .info(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })?;
        let (a, b) = info.data_offsets;
        let offset = self.data_start + a as u64;
        let read =
            |buf: &mut [u8]| read_at(&self.file, buf, offset).map_err(|e| err(&self.path, e));
        let data = match info.dtype {
            Dtype::F32 => {
                // Read straight into the f32 buffer the weights will own.
                let mut v = vec![0f32; (b - a) / 4];
                // SAFETY: any bytes are a valid f32; the file is little-endian
                // like the targets we build for.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * 4)
                };
                read(bytes)?;
                v
            }
            Dtype::F16 | Dtype::BF16 => {
                let mut buf = vec![0u8; b - a];
                read(&mut buf)?;
                let dt = if info.dtype == Dtype::F16 {
                    DType::F16
                } else {
                    DType::BF16
                };
                Tensor::from_raw_buffer(&buf, dt, &info.shape, &Device::Cpu)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1()?
            }
            other => return Err(err(&self.path, format!("dtype {other:?}"))),
        };
        if data.len() != info.shape.iter().product::<usize>() {
            return Err(err(
                &self.path,
                format!("{} bytes for shape {:?}", b - a, info.shape),
            ));
        }
        Ok(HostTensor {
            data,
            shape: info.shape.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(header: &str, data: &[u8]) -> candle_core::Result<Reader> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(data);
        std::fs::write(tmp.path(), file).unwrap();
        Reader::open(tmp.path())
    }

    #[test]
    fn a_header_whose_data_ends_past_u64_max_is_truncated_not_an_overflow() {
        // Eight valid, contiguous 2^61-1 byte tensors: the data ends at byte
        // 2^64 - 8 after the header, past u64::MAX from the file's start.
        let size = (1u64 << 61) - 1;
        let tensors: Vec<String> = (0..8u64)
            .map(|i| {
                format!(
                    r#""t{i}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{},{}]}}"#,
                    i * size,
                    (i + 1) * size
                )
            })
            .collect();
        let header = format!("{{{}}}", tensors.join(","));
        let e = open(&header, &[]).err().expect("refused").to_string();
        assert!(
            e.contains("truncated: tensor `t7` ends past byte 2^64"),
            "{e}"
        );
    }

    #[test]
    fn truncation_names_the_last_tensor() {
        let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                         "b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#;
        let e = open(header, &[0; 12]).err().expect("refused").to_string();
        let want = format!(
            "ends at byte {} of a {}-byte file",
            8 + header.len() + 16,
            8 + header.len() + 12
        );
        assert!(
            e.contains("truncated: tensor `b`") && e.contains(&want),
            "{e}"
        );
        let r = open(header, &[0; 16]).expect("complete");
        assert_eq!(r.shape("b"), Some(&[2usize][..]));
        assert_eq!(r.get("a").unwrap().data, [0.0, 0.0]);
    }
}

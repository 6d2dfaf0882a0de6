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
        if let Some((name, info)) = meta
            .tensors()
            .into_iter()
            .find(|(_, i)| data_start + i.data_offsets.1 as u64 > len)
        {
            return Err(err(
                path,
                format!(
                    "truncated: tensor `{name}` ends at byte {} of a {len}-byte file",
                    data_start + info.data_offsets.1 as u64
                ),
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

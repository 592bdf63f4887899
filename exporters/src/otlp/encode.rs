//! Encoding a batch as an OTLP export request without copying it.
//!
//! Each export request (`ExportTraceServiceRequest` and its metrics and logs siblings) is one
//! field, `repeated Resource<Items> resource_<items> = 1`. Writing every resource as field 1 with
//! prost's field encoding gives exactly the bytes `Request { resource_spans }.encode()` would,
//! from the shared `&Batch`, without building an owned request (which would mean cloning the
//! payload).

use bytes::{BufMut, Bytes};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;
use sluice_pipeline::Payload;

/// The protobuf bytes of the export request that carries `payload`.
pub fn encode_request(payload: &Payload) -> Bytes {
    match payload {
        Payload::Traces(items) => encode_field_1(items),
        Payload::Metrics(items) => encode_field_1(items),
        Payload::Logs(items) => encode_field_1(items),
    }
}

fn encode_field_1<M: Message>(items: &[M]) -> Bytes {
    // Each item's length is computed once: it sizes the buffer and prefixes the item.
    let lens: Vec<usize> = items.iter().map(Message::encoded_len).collect();
    let total: usize = lens
        .iter()
        .map(|&len| key_len(1) + encoded_len_varint(len as u64) + len)
        .sum();
    let mut buf = Vec::with_capacity(total);
    for (item, &len) in items.iter().zip(&lens) {
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(len as u64, &mut buf);
        item.encode_raw(&mut buf);
    }
    debug_assert_eq!(buf.len(), total);
    Bytes::from(buf)
}

/// Writes `src` gzip-compressed at `level` into a fresh buffer.
pub fn gzip(src: &[u8], level: flate2::Compression) -> std::io::Result<Bytes> {
    Ok(Bytes::from(gzip_after(Vec::new(), src, level)?))
}

/// `src` gzip-compressed at `level` as one gRPC message frame: the compressed flag (1), the
/// big-endian length, the gzip bytes (written in place, no copy).
pub fn grpc_gzip_frame(src: &[u8], level: flate2::Compression) -> std::io::Result<Bytes> {
    let mut buf = gzip_after(vec![1, 0, 0, 0, 0], src, level)?;
    let len = u32::try_from(buf.len() - 5).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a gRPC message is at most 4 GiB",
        )
    })?;
    buf[1..5].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(buf))
}

/// Appends `src` gzip-compressed to `prefix`.
fn gzip_after(
    mut prefix: Vec<u8>,
    src: &[u8],
    level: flate2::Compression,
) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    // OTLP data compresses 4–10× at the fast levels; one growth at most in the common case.
    prefix.reserve(src.len() / 4 + 64);
    let mut enc = flate2::write::GzEncoder::new(prefix.writer(), level);
    enc.write_all(src)?;
    Ok(enc.finish()?.into_inner())
}

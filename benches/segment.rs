//! Segmentation throughput (MB/s) on the sample corpus, as documents and as
//! one long single-line input.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tarjama::document::Document;

fn corpus_text() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn bench(c: &mut Criterion) {
    let text = corpus_text();
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("corpus", |b| {
        b.iter(|| Document::parse("corpus", black_box(text.clone())))
    });
    let one_line = text.replace('\n', " ").repeat(40);
    g.throughput(Throughput::Bytes(one_line.len() as u64));
    g.bench_function("single_line_640KB", |b| {
        b.iter(|| Document::parse("line", black_box(one_line.clone())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Encoding throughput of the Marian tokenizer on the corpus sentences, one
//! thread vs. rayon's pool. Uses the test fixture's small models, so absolute
//! numbers are lower-bound-ish for a real 65k-piece OPUS-MT vocab.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tarjama::tokenizer::MarianTokenizer;

fn corpus_sentences(root: &Path) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root.join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for para in text.lines().filter(|l| !l.trim().is_empty()) {
            // Same simple split as the fixture generator: after . ! ? ؟
            let mut start = 0;
            for (i, c) in para.char_indices() {
                if matches!(c, '.' | '!' | '?' | '؟') {
                    let end = i + c.len_utf8();
                    if para[end..].starts_with(char::is_whitespace) {
                        sentences.push(para[start..end].trim().to_owned());
                        start = end;
                    }
                }
            }
            let rest = para[start..].trim();
            if !rest.is_empty() {
                sentences.push(rest.to_owned());
            }
        }
    }
    sentences
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tok = MarianTokenizer::from_dir(root.join("tests/fixtures/tokenizer")).unwrap();
    let sentences = corpus_sentences(root);
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();

    let mut group = c.benchmark_group("encode_corpus_sentences");
    group.throughput(Throughput::Elements(refs.len() as u64));
    group.bench_function("single_thread", |b| {
        b.iter(|| {
            for s in &refs {
                black_box(tok.encode(black_box(s)).unwrap());
            }
        })
    });
    group.bench_function("parallel_rayon", |b| {
        b.iter(|| black_box(tok.encode_batch(black_box(&refs)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

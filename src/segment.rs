//! Sentence segmentation (placeholder).
pub fn sentence_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    if text.trim().is_empty() {
        vec![]
    } else {
        vec![0..text.len()]
    }
}

//! Bilingual outputs parsed back with independent parsers (quick-xml's reader
//! for TMX, an HTML5 parser for the page) and checked structurally.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use tarjama::output::{Format, Record, paths, write_atomic};

fn rec(para: usize, sent: usize, src: &str, tgt: &str) -> Record {
    Record {
        doc: "d.txt".into(),
        para,
        sent,
        start: para * 100 + sent * 10,
        end: para * 100 + sent * 10 + 5,
        src: src.into(),
        tgt: tgt.into(),
        score: -0.25,
        src_ids: None,
        tgt_ids: None,
        tgt_logprobs: None,
        alignment: None,
    }
}

fn records() -> Vec<Record> {
    vec![
        rec(0, 0, "بؤرة صراع؟", "A focus of conflict?"),
        rec(1, 0, "قال: \"<b>\" & 'x'.", "He said: \"<b>\" & 'x'."),
        rec(1, 1, "نص\tمع\nفاصل \\ هنا.", "Text\twith\nbreak \\ here."),
        rec(2, 0, "تحكم\u{1}.", "control\u{1}."),
    ]
}

#[test]
fn tmx_is_well_formed_and_pairs_every_sentence_in_order() {
    let recs = records();
    let xml = Format::Tmx.render("d", &recs).remove(0);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut header = None;
    let mut path: Vec<String> = Vec::new();
    let mut tus: Vec<Vec<(String, String)>> = Vec::new();
    let mut lang = String::new();
    let mut seg = String::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "header" => {
                let attrs: Vec<(String, String)> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            a.key.as_ref().to_string(),
                            a.normalized_value(XmlVersion::Explicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                header = Some(attrs);
            }
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                if name == "tu" {
                    tus.push(Vec::new());
                }
                if name == "tuv" {
                    lang = e
                        .try_get_attribute("xml:lang")
                        .unwrap()
                        .unwrap()
                        .normalized_value(XmlVersion::Explicit1_0)
                        .unwrap()
                        .into_owned();
                }
                if name == "seg" {
                    seg.clear();
                }
                path.push(name);
            }
            Event::Text(t) if path.last().is_some_and(|n| n == "seg") => {
                seg.push_str(&t.xml10_content());
            }
            Event::GeneralRef(r) if path.last().is_some_and(|n| n == "seg") => {
                let name = r.xml10_content();
                seg.push_str(
                    quick_xml::escape::resolve_predefined_entity(&name).expect("predefined"),
                );
            }
            Event::End(e) => {
                let name = path.pop().unwrap();
                assert_eq!(name, e.name().as_ref());
                if name == "seg" {
                    assert_eq!(path, ["tmx", "body", "tu", "tuv"]);
                    tus.last_mut().unwrap().push((lang.clone(), seg.clone()));
                }
            }
            _ => {}
        }
    }
    let header = header.expect("a header");
    for (k, v) in [
        ("srclang", "ar"),
        ("creationtool", "tarjama"),
        ("segtype", "sentence"),
    ] {
        assert!(
            header.contains(&(k.into(), v.into())),
            "{k}={v} in {header:?}"
        );
    }
    assert!(xml.contains("<tmx version=\"1.4\">"));
    assert_eq!(tus.len(), recs.len());
    for (tu, r) in tus.iter().zip(&recs) {
        let clean = |s: &str| s.replace('\u{1}', "\u{fffd}");
        assert_eq!(
            tu,
            &vec![
                ("ar".to_string(), clean(&r.src)),
                ("en".to_string(), clean(&r.tgt))
            ]
        );
    }
}

#[test]
fn html_is_self_contained_and_pairs_sentences_in_rows() {
    let recs = records();
    let page = Format::Html.render("d <1>", &recs).remove(0);
    let doc = scraper::Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    // No external resources.
    for tag in ["script[src]", "link", "img", "iframe"] {
        assert_eq!(doc.select(&sel(tag)).count(), 0, "{tag}");
    }
    assert!(!page.contains("http://") && !page.contains("https://"));
    let paras: Vec<_> = doc.select(&sel("tbody.para")).collect();
    assert_eq!(paras.len(), 3, "paragraphs preserved");
    let rows: Vec<_> = doc.select(&sel("tbody.para > tr")).collect();
    assert_eq!(rows.len(), recs.len());
    for (row, r) in rows.iter().zip(&recs) {
        let ar = row.select(&sel("td.ar")).next().unwrap();
        let en = row.select(&sel("td.en")).next().unwrap();
        assert_eq!(ar.value().attr("dir"), Some("rtl"));
        assert_eq!(ar.value().attr("lang"), Some("ar"));
        assert_eq!(en.value().attr("lang"), Some("en"));
        assert_eq!(ar.text().collect::<String>(), r.src);
        assert_eq!(en.text().collect::<String>(), r.tgt);
    }
    assert_eq!(
        doc.select(&sel("title"))
            .next()
            .unwrap()
            .text()
            .collect::<String>(),
        "d <1>"
    );
    assert!(
        page.contains("tr:hover"),
        "hovering a row highlights the pair"
    );
    assert!(page.contains("@media print"));
}

#[test]
fn tsv_escapes_tabs_newlines_and_backslashes() {
    let recs = records();
    let tsv = Format::Tsv.render("d", &recs).remove(0);
    let lines: Vec<_> = tsv.lines().collect();
    assert_eq!(lines.len(), recs.len() + 1);
    for (line, r) in lines[1..].iter().zip(&recs) {
        let cols: Vec<_> = line.split('\t').collect();
        assert_eq!(cols.len(), 7);
        let unescape = |s: &str| {
            let mut out = String::new();
            let mut it = s.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next().unwrap() {
                        't' => out.push('\t'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        '\\' => out.push('\\'),
                        o => panic!("bad escape {o}"),
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        assert_eq!(unescape(cols[4]), r.src);
        assert_eq!(unescape(cols[5]), r.tgt);
        assert_eq!(cols[0].parse::<usize>().unwrap(), r.para);
    }
}

#[test]
fn jsonl_moses_and_markdown_keep_one_record_per_line() {
    let recs = records();
    let jsonl = Format::Jsonl.render("d", &recs).remove(0);
    let parsed: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), recs.len());
    for (v, r) in parsed.iter().zip(&recs) {
        assert_eq!(v["src"], r.src.as_str());
        assert_eq!(v["tgt"], r.tgt.as_str());
        assert_eq!(v["start"], r.start);
        assert!(v.get("src_ids").is_none());
    }
    let moses = Format::Moses.render("d", &recs);
    assert_eq!(moses.len(), 2);
    assert_eq!(moses[0].lines().count(), recs.len());
    assert_eq!(moses[1].lines().count(), recs.len());
    let md = Format::Md.render("d", &recs).remove(0);
    // title, blank, header, rule, one row per record
    assert_eq!(md.lines().count(), 4 + recs.len());
    assert!(
        md.lines()
            .skip(4)
            .all(|l| l.starts_with("| ") && l.ends_with(" |"))
    );
}

#[test]
fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path(), "doc", Format::Moses);
    assert_eq!(p.len(), 2);
    assert!(p[0].ends_with("doc.ar") && p[1].ends_with("doc.en"));
    write_atomic(&p[0], b"old contents that are longer").unwrap();
    write_atomic(&p[0], b"new").unwrap();
    assert_eq!(std::fs::read(&p[0]).unwrap(), b"new");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["doc.ar"]);
}

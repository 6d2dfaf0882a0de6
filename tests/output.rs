//! Bilingual outputs parsed back with independent parsers (quick-xml's reader
//! for TMX, an HTML5 parser for the page, the `csv` crate for TSV, a
//! CommonMark renderer for Markdown) and checked structurally.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use tarjama::output::{Format, FormatWriter, Record, paths, write_atomic};
use tarjama::qa::{self, Flag};

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
        flags: qa::check(src, tgt),
        src_ids: None,
        tgt_ids: None,
        tgt_logprobs: None,
        alignment: None,
        alternatives: None,
    }
}

fn records() -> Vec<Record> {
    vec![
        rec(0, 0, "بؤرة صراع؟", "A focus of conflict?"),
        rec(1, 0, "قال: \"<b>\" & 'x'.", "He said: \"<b>\" & 'x'."),
        rec(1, 1, "نص\tمع\nفاصل \\ هنا.", "Text\twith\nbreak \\ here."),
        rec(2, 0, "تحكم\u{1}.", "control\u{1}."),
        // Flagged: 164 and KNB dropped.
        rec(2, 1, "قتل 164 شخصا وفق KNB.", "People were killed."),
    ]
}

/// The names of `flags` joined by `sep`.
fn names(flags: &[Flag], sep: &str) -> String {
    flags.iter().map(|f| f.name()).collect::<Vec<_>>().join(sep)
}

#[test]
fn the_sample_records_have_flags_where_expected() {
    let flags: Vec<Vec<Flag>> = records().into_iter().map(|r| r.flags).collect();
    let none: Vec<Flag> = Vec::new();
    assert_eq!(
        flags,
        [
            none.clone(),
            none.clone(),
            none.clone(),
            none,
            vec![Flag::Numbers, Flag::Latin]
        ]
    );
}

#[test]
fn tmx_is_well_formed_and_pairs_every_sentence_in_order() {
    let recs = records();
    let xml = Format::Tmx.render("d", &recs).remove(0);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut header = None;
    let mut path: Vec<String> = Vec::new();
    let mut tus: Vec<Vec<(String, String)>> = Vec::new();
    let mut props: Vec<Option<String>> = Vec::new();
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
                    props.push(None);
                }
                if name == "prop" {
                    assert_eq!(path, ["tmx", "body", "tu"], "prop before the tuvs");
                    assert!(tus.last().unwrap().is_empty(), "prop before the tuvs");
                    let ty = e.try_get_attribute("type").unwrap().unwrap();
                    assert_eq!(ty.value.as_ref(), "x-tarjama-flags");
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
            Event::Text(t) if path.last().is_some_and(|n| n == "prop") => {
                *props.last_mut().unwrap() = Some(t.xml10_content().into_owned());
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
    // Flags as a prop of the flagged units only.
    let want: Vec<Option<String>> = recs
        .iter()
        .map(|r| (!r.flags.is_empty()).then(|| names(&r.flags, ",")))
        .collect();
    assert_eq!(props, want);
    assert!(want.iter().any(Option::is_some));
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
        // English first (left), Arabic second (right), in DOM order too.
        let cells: Vec<_> = row.select(&sel("td")).collect();
        assert_eq!(cells, [en, ar]);
        assert_eq!(ar.value().attr("dir"), Some("rtl"));
        assert_eq!(ar.value().attr("lang"), Some("ar"));
        // Its own direction, so that the swapped (RTL) table keeps it LTR.
        assert_eq!(en.value().attr("dir"), Some("ltr"));
        assert_eq!(en.value().attr("lang"), Some("en"));
        assert_eq!(ar.text().collect::<String>(), r.src);
        // The flags are shown by the style sheet, not in the cell's text.
        assert_eq!(en.text().collect::<String>(), r.tgt);
        let (class, title, data) = if r.flags.is_empty() {
            (None, None, None)
        } else {
            let names = names(&r.flags, ", ");
            (
                Some("qa".to_string()),
                Some(format!("QA: {names}")),
                Some(names),
            )
        };
        assert_eq!(row.value().attr("class").map(String::from), class);
        assert_eq!(row.value().attr("title").map(String::from), title);
        assert_eq!(en.value().attr("data-qa").map(String::from), data);
    }
    assert_eq!(doc.select(&sel("tr.qa")).count(), 1);
    // The flags' label, in dark mode and print too.
    assert!(page.contains("tr.qa td.en::after{content:attr(data-qa);"));
    for block in ["@media (prefers-color-scheme:dark)", "@media print"] {
        let css = &page[page.find(block).unwrap()..];
        let css = &css[..css.find('\n').unwrap()];
        assert!(css.contains("--qa:") && css.contains("--qa-bg:"), "{css}");
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
    let heads: Vec<_> = doc
        .select(&sel("thead th"))
        .map(|th| th.value().attr("lang").unwrap())
        .collect();
    assert_eq!(heads, ["en", "ar"], "header columns match the cells");
    assert_eq!(
        doc.select(&sel("h1"))
            .next()
            .unwrap()
            .text()
            .collect::<String>(),
        "d <1>"
    );
    // Readable on a phone, and in dark mode.
    assert_eq!(
        doc.select(&sel("meta[name=viewport]"))
            .next()
            .and_then(|m| m.value().attr("content")),
        Some("width=device-width, initial-scale=1")
    );
    assert!(page.contains("@media (prefers-color-scheme:dark)"));
    // The side swap: a checkbox right before the table (the CSS sibling
    // selector mirrors the table), with a label, no script, hidden in print.
    let swap = doc
        .select(&sel("input#swap[type=checkbox]"))
        .next()
        .unwrap();
    assert_eq!(
        doc.select(&sel("label[for=swap]")).count(),
        1,
        "the toggle is labelled"
    );
    let table = doc.select(&sel("table")).next().unwrap();
    assert!(
        swap.next_siblings()
            .filter_map(scraper::ElementRef::wrap)
            .any(|e| e == table),
        "#swap precedes the table as a sibling"
    );
    assert!(page.contains("#swap:checked~table{direction:rtl}"));
    assert_eq!(doc.select(&sel("script")).count(), 0);
    let print = &page[page.find("@media print").unwrap()..];
    assert!(print.contains(".swap{display:none}"));
}

/// A page of real Arabic (the opening of `corpus/kazakhstan-unrest-opinion`)
/// with a hand-made English translation, long and short paragraphs, written
/// to `target/tmp/html-sample.html` for looking at in a browser (the
/// screenshots in `docs/` are of this page).
#[test]
fn html_sample_page_for_screenshots() {
    let pairs: [(usize, &str, &str); 6] = [
        (
            0,
            "بؤرة صراع إقليمي جديد بين روسيا والغرب؟",
            "A new regional conflict hotspot between Russia and the West?",
        ),
        (
            1,
            "في أوائل يناير/كانون الثاني 2022، انزلقت كازاخستان في الفوضى وأعمال العنف في الشوارع، ما بدا للعالم على أنه انتفاضة شعبية ضد الحكومة؛ ولكن بالحقيقه، إنها شبكة للجريمة المنظمة تطلق الرصاص من مقر مركزي، وفقاً لمسؤولين، حيث تحولت ألما آتا – أكبر مدن كازاخستان وأكثرها ازدهاراً – إلى منطقة حرب مليئة بالجثث والمباني والسيارات المحترقة.",
            "In early January 2022, Kazakhstan slid into chaos and street violence, in what looked to the world like a popular uprising against the government; in reality, officials say, it was an organised crime network firing from a central headquarters, as Almaty – Kazakhstan's largest and most prosperous city – became a war zone full of bodies and burnt-out buildings and cars.",
        ),
        (
            2,
            "مؤخراً، أعلنت الحكومة الكازاخية عن ارتفاع حاد في أسعار الوقود، وبدأت الاحتجاجات بعد ذلك.",
            "Recently, the Kazakh government announced a sharp rise in fuel prices, and the protests began after that.",
        ),
        (
            2,
            "لكن الأمر لا يتعلق بالمصدر الحقيقي للاضطرابات – أي ارتفاع الأسعار – بقدر ما يتعلق بالصراع على السلطة بين الموالين لنور سلطان نزارباييف، الذي تنحى عن منصبه كرئيس العام 2019 محتفظاً بسلطات واسعة وحصل على اللقب الفخري “زعيم الأمة”، وقاسم جومارت توكاييف، الرئيس الحالي الذي قام مؤخراً بتعديل في المناصب المهمة للدولة.",
            "But it is less about the real source of the unrest – the price rise – than about the power struggle between the loyalists of Nursultan Nazarbayev, who stepped down as president in 2019 while keeping broad powers and the honorary title “Leader of the Nation”, and Kassym-Jomart Tokayev, the current president, who recently reshuffled the key posts of the state.",
        ),
        (
            3,
            "وقبل أن نكمل الحديث، تجب الإشارة إلى أن الرئيس التركي، رجب طيب أردوغان، وحزبه، “العدالة والتنمية”، هم من أتباع “الإخوان المسلمين”، في حين صنفت العديد من الدول، مثل روسيا ومصر والإمارات وسوريا، الجماعة على أنها تنظيم إرهابي وحضرت عملها.",
            "Before we go on, it should be noted that the Turkish president, Recep Tayyip Erdoğan, and his party, “Justice and Development”, follow the “Muslim Brotherhood”, while many countries, such as Russia, Egypt, the UAE and Syria, have designated the group a terrorist organisation and banned it.",
        ),
        (
            4,
            "بالعودة إلى أبيش، يذكر أحد الحسابات على “تويتر” بأن محتجز في ألما آتا اليوم.",
            "Back to Abish: one account on “Twitter” says he is being held in Almaty today.",
        ),
    ];
    let mut recs = Vec::new();
    for (para, src, tgt) in pairs {
        let sent = recs.iter().filter(|r: &&Record| r.para == para).count();
        recs.push(rec(para, sent, src, tgt));
    }
    // Good translations of real text: QA finds nothing to flag.
    for r in &recs {
        assert_eq!(r.flags, [], "{} → {}", r.src, r.tgt);
    }
    let page = Format::Html
        .render("kazakhstan-unrest-opinion.ar.txt", &recs)
        .remove(0);
    let doc = scraper::Html::parse_document(&page);
    assert!(doc.errors.is_empty(), "{:?}", doc.errors);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-sample.html");
    std::fs::write(&path, page).unwrap();
}

/// Fields that break naive TSV: quotes at either end (pandas' default reader
/// drops unquoted ones), tabs, line breaks, backslashes.
fn awkward_records() -> Vec<Record> {
    let mut recs = records();
    recs.push(rec(3, 0, "\"اقتباس كامل\"", "\"A whole quote\""));
    recs.push(rec(3, 1, "\"", "a \"\" b\r\nc\rd"));
    recs.push(rec(3, 2, "\\t ليس تبويبا \\n", "\\t not a tab \\n"));
    recs.push(rec(3, 3, " مسافة ", "#1, 'x', =1+1"));
    recs
}

#[test]
fn tsv_reads_back_exactly_with_an_rfc_4180_reader() {
    for doc_column in [false, true] {
        let mut recs = awkward_records();
        recs[2].doc = "dir\twith \"tab\".txt".into();
        let mut w = FormatWriter::new(Format::Tsv, vec![Vec::new()], doc_column);
        w.begin("d").unwrap();
        // A second begin (the next document of a stream) adds no header.
        for (i, r) in recs.iter().enumerate() {
            if i == 3 {
                w.end().unwrap();
                w.begin("e").unwrap();
            }
            w.record(r).unwrap();
        }
        w.end().unwrap();
        let tsv = w.into_inner().remove(0);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .from_reader(tsv.as_slice());
        let mut header: Vec<&str> =
            vec!["para", "sent", "start", "end", "ar", "en", "score", "flags"];
        if doc_column {
            header.insert(0, "doc");
        }
        assert_eq!(reader.headers().unwrap(), &csv::StringRecord::from(header));
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), recs.len());
        for (row, r) in rows.iter().zip(&recs) {
            let mut want = vec![
                r.para.to_string(),
                r.sent.to_string(),
                r.start.to_string(),
                r.end.to_string(),
                r.src.clone(),
                r.tgt.clone(),
                format!("{:.4}", r.score),
                names(&r.flags, ","),
            ];
            if doc_column {
                want.insert(0, r.doc.clone());
            }
            assert_eq!(row, &csv::StringRecord::from(want));
        }
        // Quoted only where needed: a plain row is plain.
        let text = String::from_utf8(tsv).unwrap();
        if !doc_column {
            // For checking other readers by hand (pandas: see the README).
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
            std::fs::write(dir.join("tsv-sample.tsv"), &text).unwrap();
            let jsonl = Format::Jsonl.render("d", &recs).remove(0);
            std::fs::write(dir.join("tsv-sample.jsonl"), jsonl).unwrap();
        }
        let plain = if doc_column {
            "d.txt\t0\t0\t0\t5\t"
        } else {
            "\n0\t0\t0\t5\t"
        };
        assert!(text.contains(&format!(
            "{plain}بؤرة صراع؟\tA focus of conflict?\t-0.2500\t\n"
        )));
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
        // Always there, `[]` when nothing is flagged.
        let flags: Vec<&str> = v["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(flags, r.flags.iter().map(|f| f.name()).collect::<Vec<_>>());
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
    // A QA column, last: the flags of the row or nothing.
    assert!(md.contains("| ¶ | Arabic | English | QA |\n| --- | --- | --- | --- |\n"));
    assert!(
        md.ends_with("| People were killed. | numbers, latin |\n"),
        "{md}"
    );
    assert!(md.contains("| A focus of conflict? |  |\n"), "{md}");
}

/// Renders `md` as CommonMark with GitHub's table and strikethrough (and
/// pulldown-cmark's other inline extensions, math included) and returns the
/// HTML.
fn commonmark(md: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_MATH
        | Options::ENABLE_SUPERSCRIPT
        | Options::ENABLE_SUBSCRIPT
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_GFM;
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(md, opts));
    out
}

#[test]
fn markdown_shows_hostile_text_exactly_and_no_html() {
    let hostile = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "**bold** and __bold__ and *em* and _em_",
        "a|b \\| c\\",
        "[x](javascript:1) ![i](x.png) [y][1] [^1] <https://e.com>",
        "&amp; &lt; &#60; &copy",
        "`code` ~~gone~~ ~sub~ ^sup^ $x$ $$y$$",
        "# not a heading #",
        "- not a list",
        "1. not a list",
        "> not a quote",
        "back\\slash\\ and \\* and \\_",
        "line\nbreak\r\nhere",
        "{#id .class} ## C # ",
        "قال: **مهم** <b>عريض</b> | فاصل",
    ];
    let recs: Vec<Record> = hostile
        .iter()
        .enumerate()
        .map(|(i, s)| rec(i, 0, s, &format!("{s} (en)")))
        .collect();
    let title = "<script>x</script> *t* #1 [a](b) #";
    let md = Format::Md.render(title, &recs).remove(0);
    assert_eq!(md.lines().count(), 4 + recs.len(), "{md}");
    let html = commonmark(&md);
    for tag in [
        "<script",
        "<img",
        "<strong",
        "<em",
        "<a ",
        "<code",
        "<del",
        "<b>",
        "<s>",
        "<sup",
        "<sub",
        "<span",
        "<li",
        "<blockquote",
    ] {
        assert!(!html.contains(tag), "{tag} in {html}");
    }
    let doc = scraper::Html::parse_fragment(&html);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let text = |e: scraper::ElementRef| e.text().collect::<String>();
    let h1: Vec<_> = doc.select(&sel("h1")).map(text).collect();
    assert_eq!(h1, [title], "a closing `#` is text");
    let h1 = doc.select(&sel("h1")).next().unwrap();
    assert_eq!(h1.value().attrs().count(), 0, "no heading attributes");
    assert_eq!(doc.select(&sel("table")).count(), 1, "{html}");
    let rows: Vec<Vec<String>> = doc
        .select(&sel("tbody tr"))
        .map(|tr| tr.select(&sel("td")).map(text).collect())
        .collect();
    assert_eq!(rows.len(), recs.len(), "{html}");
    for (row, r) in rows.iter().zip(&recs) {
        let flat = |s: &str| s.replace(['\n', '\r'], " ");
        let want = [
            format!("{}.{}", r.para + 1, r.sent + 1),
            flat(&r.src).trim().to_string(),
            flat(&r.tgt).trim().to_string(),
            names(&r.flags, ", "),
        ];
        assert_eq!(row, &want, "{html}");
    }
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

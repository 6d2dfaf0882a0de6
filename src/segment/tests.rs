use super::*;

/// Paragraph → sentences, written by hand from the rules; every rule appears
/// on both sides (split / no split).
const CASES: &[(&str, &[&str])] = &[
    // --- Terminators and runs of them.
    ("ذهب إلى السوق. ثم عاد.", &["ذهب إلى السوق.", "ثم عاد."]),
    ("هل أنت بخير؟ نعم.", &["هل أنت بخير؟", "نعم."]),
    ("يا له من يوم! لن أنساه.", &["يا له من يوم!", "لن أنساه."]),
    ("He left. She stayed.", &["He left.", "She stayed."]),
    ("Really?! No way.", &["Really?!", "No way."]),
    ("ماذا؟! لا أصدق.", &["ماذا؟!", "لا أصدق."]),
    ("یہ کتاب ہے۔ وہ قلم ہے۔", &["یہ کتاب ہے۔", "وہ قلم ہے۔"]),
    (
        "انتظرنا طويلا... ثم جاء الخبر.",
        &["انتظرنا طويلا...", "ثم جاء الخبر."],
    ),
    (
        "انتظرنا طويلا… ثم جاء الخبر.",
        &["انتظرنا طويلا…", "ثم جاء الخبر."],
    ),
    ("He waited... and waited.", &["He waited... and waited."]),
    ("Is it over?? Yes.", &["Is it over??", "Yes."]),
    ("  مرحبا بكم.   ", &["مرحبا بكم."]),
    ("\u{a0}أهلا. وسهلا\u{a0}", &["أهلا.", "وسهلا"]),
    ("كلمة . كلمة أخرى", &["كلمة .", "كلمة أخرى"]),
    // --- Ellipsis decisions: `..` is a pause, a one-word lead-in keeps its `...`.
    (
        "مفتاح آسيا الوسطى “كازاخستان”.. مكسر عصا بين قوتين",
        &["مفتاح آسيا الوسطى “كازاخستان”.. مكسر عصا بين قوتين"],
    ),
    (
        "#كازاخستان... لماذا تتنافس #روسيا و #أمريكا عليها؟",
        &["#كازاخستان... لماذا تتنافس #روسيا و #أمريكا عليها؟"],
    ),
    ("Well... I am not sure.", &["Well... I am not sure."]),
    ("لم يعد... هذا مؤسف.", &["لم يعد...", "هذا مؤسف."]),
    // --- Ellipsis as an omission mark: after clause punctuation or an opener,
    // before `إلخ` or a closing bracket, inside a pair that closes ahead.
    (
        "وقال، ... إن الحكومة ستستقيل.",
        &["وقال، ... إن الحكومة ستستقيل."],
    ),
    (
        "They said, ... We will return.",
        &["They said, ... We will return."],
    ),
    (
        "وقال، . . . إن الحكومة ستستقيل.",
        &["وقال، . . . إن الحكومة ستستقيل."],
    ),
    ("وأضاف: … إن الاتفاق صامد.", &["وأضاف: … إن الاتفاق صامد."]),
    (
        "«قال ... ثم غادر» وانتهى الاجتماع.",
        &["«قال ... ثم غادر» وانتهى الاجتماع."],
    ),
    (
        "ونقلت الوكالة (عن مصدر … أن المفاوضات مستمرة) دون تفاصيل.",
        &["ونقلت الوكالة (عن مصدر … أن المفاوضات مستمرة) دون تفاصيل."],
    ),
    // The closing `»` is past the window: the opener before `...` decides.
    (
        "قال: «... ثم انسحبنا من المدينة بعد أيام طويلة من القتال العنيف في الشوارع».",
        &["قال: «... ثم انسحبنا من المدينة بعد أيام طويلة من القتال العنيف في الشوارع»."],
    ),
    (
        "اشترى الفاكهة والخضار ... إلخ. ثم عاد إلى البيت.",
        &["اشترى الفاكهة والخضار ... إلخ.", "ثم عاد إلى البيت."],
    ),
    (
        "ذكر دولا عدة (روسيا والصين...) في كلمته.",
        &["ذكر دولا عدة (روسيا والصين...) في كلمته."],
    ),
    // Contrasts: an ellipsis that ends its sentence still does.
    ("قال ذلك... إن الأمر صعب.", &["قال ذلك...", "إن الأمر صعب."]),
    (
        "انتظرنا طويلا . . . ثم جاء الخبر.",
        &["انتظرنا طويلا . . .", "ثم جاء الخبر."],
    ),
    (
        "«قال إنه سيعود... ثم غادر.",
        &["«قال إنه سيعود...", "ثم غادر."],
    ),
    (
        "قال «نعم» ثم انتظر... وبعدها غادر.",
        &["قال «نعم» ثم انتظر...", "وبعدها غادر."],
    ),
    (
        "«انتظرنا طويلا...» وجاء الخبر بعد ذلك.",
        &["«انتظرنا طويلا...»", "وجاء الخبر بعد ذلك."],
    ),
    (
        "ذكر دولا عدة (روسيا والصين...). وغادر بعدها.",
        &["ذكر دولا عدة (روسيا والصين...).", "وغادر بعدها."],
    ),
    // The opening `(` is past the window behind.
    (
        "(قال المتحدث باسم الوزارة في مؤتمر صحفي عقده مساء أمس إنه سيعود... ثم غادر)",
        &[
            "(قال المتحدث باسم الوزارة في مؤتمر صحفي عقده مساء أمس إنه سيعود...",
            "ثم غادر)",
        ],
    ),
    // The closing `)` is past the window.
    (
        "(قال إنه سيعود... ثم غادر المدينة بعد أيام طويلة من الانتظار والقلق)",
        &[
            "(قال إنه سيعود...",
            "ثم غادر المدينة بعد أيام طويلة من الانتظار والقلق)",
        ],
    ),
    // --- Glued punctuation.
    (
        "لماذا تتنافس عليها؟#مسائية_DW pic.twitter.com/ol4kapoEQ4",
        &[
            "لماذا تتنافس عليها؟",
            "#مسائية_DW pic.twitter.com/ol4kapoEQ4",
        ],
    ),
    ("لماذا؟قال أحد", &["لماذا؟", "قال أحد"]),
    ("انتهى الاجتماع.وقال الوزير", &["انتهى الاجتماع.وقال الوزير"]),
    (
        "Ivan Nechepurenko. 7.1.2022In Kazakhstan’s Street Battles. The New York Times.",
        &[
            "Ivan Nechepurenko.",
            "7.1.2022In Kazakhstan’s Street Battles.",
            "The New York Times.",
        ],
    ),
    ("Wow!great", &["Wow!great"]),
    // --- Closers stay with the sentence they close.
    (
        "قال: \"انتهى الأمر.\" الوضع الآن هادئ.",
        &["قال: \"انتهى الأمر.\"", "الوضع الآن هادئ."],
    ),
    (
        "He said: 'stop.' Then he left.",
        &["He said: 'stop.'", "Then he left."],
    ),
    (
        "(انظر الصورة.) وبعدها الخبر.",
        &["(انظر الصورة.)", "وبعدها الخبر."],
    ),
    ("سألها: «لماذا؟» لم تجب.", &["سألها: «لماذا؟»", "لم تجب."]),
    (
        "She said \"No!\" The room went quiet.",
        &["She said \"No!\"", "The room went quiet."],
    ),
    ("See [1.] Next item.", &["See [1.]", "Next item."]),
    // --- Quotations: `".` ends after the quote; an inner terminator followed by
    // the rest of the sentence does not.
    (
        "وقال: \"سنواصل العمل\". وأضاف أن الوضع هادئ.",
        &["وقال: \"سنواصل العمل\".", "وأضاف أن الوضع هادئ."],
    ),
    (
        "\"We will win.\" said the minister.",
        &["\"We will win.\" said the minister."],
    ),
    (
        "\"Stop!\" he shouted. They ran.",
        &["\"Stop!\" he shouted.", "They ran."],
    ),
    (
        "\"لن نتراجع!\" قال الوزير.",
        &["\"لن نتراجع!\" قال الوزير."],
    ),
    (
        "«هذا خطأ.» أضافت المتحدثة.",
        &["«هذا خطأ.» أضافت المتحدثة."],
    ),
    (
        "\"لن نتراجع!\" وقال الوزير إنه غاضب.",
        &["\"لن نتراجع!\"", "وقال الوزير إنه غاضب."],
    ),
    ("\"Why?\", she asked.", &["\"Why?\", she asked."]),
    ("«لماذا؟»، سأل الصحفي.", &["«لماذا؟»، سأل الصحفي."]),
    (
        "وأضاف: \"سنرد بقوة!\" ثم غادر المؤتمر.",
        &["وأضاف: \"سنرد بقوة!\" ثم غادر المؤتمر."],
    ),
    (
        "وقال: \"لن نقبل بذلك.\" مضيفاً أن الحوار ممكن.",
        &["وقال: \"لن نقبل بذلك.\" مضيفاً أن الحوار ممكن."],
    ),
    (
        "وقال: \"لن نقبل بذلك\". مضيفاً أن الحوار ممكن.",
        &["وقال: \"لن نقبل بذلك\".", "مضيفاً أن الحوار ممكن."],
    ),
    // --- Arabic comma and semicolon never end a sentence.
    (
        "جاء الوزير، وتحدث؛ ثم غادر.",
        &["جاء الوزير، وتحدث؛ ثم غادر."],
    ),
    ("أولا، الأمن؛ ثانيا، الاقتصاد", &["أولا، الأمن؛ ثانيا، الاقتصاد"]),
    // --- Lines without final punctuation.
    ("المراجع:", &["المراجع:"]),
    ("عدم مغادرة الرئيس السابق", &["عدم مغادرة الرئيس السابق"]),
    (
        "— DW عربية (@dw_arabic) January 6, 2022",
        &["— DW عربية (@dw_arabic) January 6, 2022"],
    ),
    // --- Numbers, dates, times.
    (
        "بلغت القيمة 2,2 مليون يورو. وهي قليلة.",
        &["بلغت القيمة 2,2 مليون يورو.", "وهي قليلة."],
    ),
    (
        "Inflation hit 3.5% in May. Prices rose.",
        &["Inflation hit 3.5% in May.", "Prices rose."],
    ),
    (
        "في 7.1.2022 بدأت الاحتجاجات.",
        &["في 7.1.2022 بدأت الاحتجاجات."],
    ),
    (
        "وصل في الساعة 10:08 صباحا. ثم تحدث.",
        &["وصل في الساعة 10:08 صباحا.", "ثم تحدث."],
    ),
    (
        "بلغت النسبة ١٢٫٥ بالمئة. وهذا كثير.",
        &["بلغت النسبة ١٢٫٥ بالمئة.", "وهذا كثير."],
    ),
    (
        "تنحى في العام 2019. وبقي نافذا.",
        &["تنحى في العام 2019.", "وبقي نافذا."],
    ),
    ("Sputnik. 8.1.2022. On:", &["Sputnik.", "8.1.2022.", "On:"]),
    (
        "It ended in 2019. 25 people died.",
        &["It ended in 2019.", "25 people died."],
    ),
    ("1. Introduction", &["1. Introduction"]),
    ("٣. الاقتصاد الكازاخستاني", &["٣. الاقتصاد الكازاخستاني"]),
    (
        "IV. Results and discussion",
        &["IV. Results and discussion"],
    ),
    ("الخطوة 1. ثم الخطوة 2.", &["الخطوة 1.", "ثم الخطوة 2."]),
    (
        "قتل 26 شخصا و18 عنصرا. وأصيب 740.",
        &["قتل 26 شخصا و18 عنصرا.", "وأصيب 740."],
    ),
    ("1.) The first item", &["1.) The first item"]),
    (
        "It was 1.) Then it ended.",
        &["It was 1.)", "Then it ended."],
    ),
    (
        "He paused . . . and went on. . . . The end.",
        &["He paused . . . and went on. . . .", "The end."],
    ),
    (
        "You and I. Did you see Albert I. Jones?",
        &["You and I.", "Did you see Albert I. Jones?"],
    ),
    // --- Arabic initials and abbreviations.
    (
        "أوقف المدير السابق ك. ك. ماسيموف وأودع مركزا.",
        &["أوقف المدير السابق ك. ك. ماسيموف وأودع مركزا."],
    ),
    ("التقى د. محمد بالوزير.", &["التقى د. محمد بالوزير."]),
    ("التقى د.محمد بالوزير.", &["التقى د.محمد بالوزير."]),
    (
        "انظر ج. 2، ص. 15 من الكتاب.",
        &["انظر ج. 2، ص. 15 من الكتاب."],
    ),
    ("كتبه أ.د. خالد العلي.", &["كتبه أ.د. خالد العلي."]),
    (
        "قال م. أحمد إن المشروع جاهز.",
        &["قال م. أحمد إن المشروع جاهز."],
    ),
    ("وقّع دُ. سامي العقد.", &["وقّع دُ. سامي العقد."]),
    (
        "الفواكه والخضار إلخ. وقال البائع.",
        &["الفواكه والخضار إلخ.", "وقال البائع."],
    ),
    // --- Latin initials spelled in Arabic letters.
    (
        "اغتيل الرئيس الأمريكي جون إف. كينيدي عام 1963.",
        &["اغتيل الرئيس الأمريكي جون إف. كينيدي عام 1963."],
    ),
    (
        "كتبت جي. كي. رولينغ سلسلة هاري بوتر.",
        &["كتبت جي. كي. رولينغ سلسلة هاري بوتر."],
    ),
    (
        "ترجم روايات دي. إتش. لورانس إلى العربية.",
        &["ترجم روايات دي. إتش. لورانس إلى العربية."],
    ),
    (
        "إتش. جي. ويلز كاتب بريطاني.",
        &["إتش. جي. ويلز كاتب بريطاني."],
    ),
    (
        "يعد إف. سكوت فيتزجيرالد من أشهر الروائيين.",
        &["يعد إف. سكوت فيتزجيرالد من أشهر الروائيين."],
    ),
    (
        "التقى جورج دبليو. بوش بالوزير.",
        &["التقى جورج دبليو. بوش بالوزير."],
    ),
    (
        "ترجمت أعمال إي. إم. فورستر وتي. إس. إليوت.",
        &["ترجمت أعمال إي. إم. فورستر وتي. إس. إليوت."],
    ),
    (
        "كتبت جى. كى. رولينج سلسلة هارى بوتر.",
        &["كتبت جى. كى. رولينج سلسلة هارى بوتر."],
    ),
    (
        "التقى جون اف. كينيدي بالوزير.",
        &["التقى جون اف. كينيدي بالوزير."],
    ),
    (
        "كتب جيه. ر. ر. تولكين الرواية.",
        &["كتب جيه. ر. ر. تولكين الرواية."],
    ),
    // Contrasts: the letter ends the sentence before an opener, a definite
    // noun, a digit or Latin text, and after a number (`5 جي.` is a label).
    (
        "أشار إلى فيتامين دي. وقال إنه مفيد.",
        &["أشار إلى فيتامين دي.", "وقال إنه مفيد."],
    ),
    ("اتصل بي. ثم أغلق الهاتف.", &["اتصل بي.", "ثم أغلق الهاتف."]),
    (
        "لم يتصل أحد بي. وكانت الساعة متأخرة.",
        &["لم يتصل أحد بي.", "وكانت الساعة متأخرة."],
    ),
    (
        "تحدث عن فيتامين دي. الأطباء ينصحون به.",
        &["تحدث عن فيتامين دي.", "الأطباء ينصحون به."],
    ),
    (
        "تحدث عن فيتامين دي. 40 بالمئة يعانون نقصه.",
        &["تحدث عن فيتامين دي.", "40 بالمئة يعانون نقصه."],
    ),
    (
        "اختاروا الخطة بي. The plan worked.",
        &["اختاروا الخطة بي.", "The plan worked."],
    ),
    (
        "أطلقت الشركة شبكة 5 جي. تغطي الشبكة العاصمة.",
        &["أطلقت الشركة شبكة 5 جي.", "تغطي الشبكة العاصمة."],
    ),
    (
        "سأل عن الخيار إن. فقد كان غائبا.",
        &["سأل عن الخيار إن.", "فقد كان غائبا."],
    ),
    // --- Era and clock markers after numbers.
    (
        "ولد عام 1950 م. وكان والده تاجرا.",
        &["ولد عام 1950 م.", "وكان والده تاجرا."],
    ),
    (
        "ولد عام 1950م. وكان والده تاجرا.",
        &["ولد عام 1950م.", "وكان والده تاجرا."],
    ),
    (
        "توفي سنة 1443 هـ. ودفن في مكة.",
        &["توفي سنة 1443 هـ.", "ودفن في مكة."],
    ),
    (
        "توفي سنة 1443هـ. ودفن في مكة.",
        &["توفي سنة 1443هـ.", "ودفن في مكة."],
    ),
    (
        "حكم من 1950 م. إلى 1960 م.",
        &["حكم من 1950 م. إلى 1960 م."],
    ),
    (
        "بين 1258 هـ. و1300 هـ. عاش العالم.",
        &["بين 1258 هـ. و1300 هـ.", "عاش العالم."],
    ),
    (
        "بنيت المدينة عام 300 ق.م. وازدهرت.",
        &["بنيت المدينة عام 300 ق.م.", "وازدهرت."],
    ),
    (
        "يبدأ البث الساعة 9 م. ويستمر ساعة.",
        &["يبدأ البث الساعة 9 م.", "ويستمر ساعة."],
    ),
    (
        "تبدأ الجلسة الساعة 10:30 ص. بتوقيت موسكو.",
        &["تبدأ الجلسة الساعة 10:30 ص. بتوقيت موسكو."],
    ),
    (
        "تبدأ الجلسة الساعة 10:30 ص. وتنتهي ظهرا.",
        &["تبدأ الجلسة الساعة 10:30 ص.", "وتنتهي ظهرا."],
    ),
    ("في سنة 1950 م. حتى وفاته.", &["في سنة 1950 م. حتى وفاته."]),
    // --- Latin initials and abbreviations.
    (
        "David E. Sanger, Eric Schmitt & Ben Hubbard. 19.7.2017. Trump Ends Aid.",
        &[
            "David E. Sanger, Eric Schmitt & Ben Hubbard.",
            "19.7.2017.",
            "Trump Ends Aid.",
        ],
    ),
    ("J. K. Rowling wrote it.", &["J. K. Rowling wrote it."]),
    (
        "They chose Plan B. The rest failed.",
        &["They chose Plan B.", "The rest failed."],
    ),
    (
        "أشار إلى فيتامين D. وقال إنه مفيد.",
        &["أشار إلى فيتامين D.", "وقال إنه مفيد."],
    ),
    (
        "Dr. Smith arrived. He spoke.",
        &["Dr. Smith arrived.", "He spoke."],
    ),
    ("Mr. and Mrs. Jones left.", &["Mr. and Mrs. Jones left."]),
    ("التقى Dr. Smith بالوزير.", &["التقى Dr. Smith بالوزير."]),
    ("The U.S. Army moved in.", &["The U.S. Army moved in."]),
    (
        "He lives in the U.S. He works there.",
        &["He lives in the U.S.", "He works there."],
    ),
    (
        "Use fruit, e.g. Apples and pears.",
        &["Use fruit, e.g. Apples and pears."],
    ),
    (
        "That is, i.e. The same thing.",
        &["That is, i.e. The same thing."],
    ),
    ("See No. 5 in the list.", &["See No. 5 in the list."]),
    (
        "He said No. The room fell silent.",
        &["He said No.", "The room fell silent."],
    ),
    (
        "Born Jan. 6, 1990 in Almaty.",
        &["Born Jan. 6, 1990 in Almaty."],
    ),
    ("See p. 12 and pp. 14-16.", &["See p. 12 and pp. 14-16."]),
    ("Apple Inc. said so.", &["Apple Inc. said so."]),
    (
        "Apple Inc. Reported earnings.",
        &["Apple Inc. Reported earnings."],
    ),
    (
        "He works at Apple Inc. The firm is big.",
        &["He works at Apple Inc.", "The firm is big."],
    ),
    (
        "Martin Luther King Jr. He had a dream.",
        &["Martin Luther King Jr.", "He had a dream."],
    ),
    (
        "It opened at 5 p.m. The crowd came.",
        &["It opened at 5 p.m.", "The crowd came."],
    ),
    (
        "It opened at 5 p.m. on Friday.",
        &["It opened at 5 p.m. on Friday."],
    ),
    (
        "Ask St. Petersburg officials.",
        &["Ask St. Petersburg officials."],
    ),
    (
        "Russia vs. Ukraine talks began.",
        &["Russia vs. Ukraine talks began."],
    ),
    (
        "HOUSE OF REPRESENTATIVES. ONE HUNDRED FIFTEENTH CONGRESS. 11.7.2018. On:",
        &[
            "HOUSE OF REPRESENTATIVES.",
            "ONE HUNDRED FIFTEENTH CONGRESS.",
            "11.7.2018.",
            "On:",
        ],
    ),
    // --- URLs, e-mail, handles, hashtags.
    (
        "افتح https://example.com/search?q=كازاخستان&x=1 الآن.",
        &["افتح https://example.com/search?q=كازاخستان&x=1 الآن."],
    ),
    (
        "See https://bit.ly/3FTnezU. Then read on.",
        &["See https://bit.ly/3FTnezU.", "Then read on."],
    ),
    ("https://nyti.ms/3AlQ1Ma", &["https://nyti.ms/3AlQ1Ma"]),
    (
        "Visit example.com. It is free.",
        &["Visit example.com.", "It is free."],
    ),
    (
        "Visit www.dw.com/ar for more.",
        &["Visit www.dw.com/ar for more."],
    ),
    (
        "الصورة pic.twitter.com/ol4kapoEQ4 من الحساب.",
        &["الصورة pic.twitter.com/ol4kapoEQ4 من الحساب."],
    ),
    (
        "راسلنا على info.desk@example.org. سنرد قريبا.",
        &["راسلنا على info.desk@example.org.", "سنرد قريبا."],
    ),
    ("Mail a.b@c.io?Subject", &["Mail a.b@c.io?Subject"]),
    (
        "نشر @dw_arabic الخبر. ثم حذفه.",
        &["نشر @dw_arabic الخبر.", "ثم حذفه."],
    ),
    (
        "#كازاخستان تتصدر. #روسيا تراقب.",
        &["#كازاخستان تتصدر.", "#روسيا تراقب."],
    ),
    // --- Continuation after the terminator.
    ("The end. and then more.", &["The end. and then more."]),
    ("قال ذلك. , ثم سكت.", &["قال ذلك. , ثم سكت."]),
    ("إنه الأمن القومي. – KNB", &["إنه الأمن القومي.", "– KNB"]),
    // --- Editorial marks in brackets and invisible bidi marks.
    (
        "وقال إن الوضع (...) صعب جدا.",
        &["وقال إن الوضع (...) صعب جدا."],
    ),
    (
        "He said [\u{2026}] nothing. Then left.",
        &["He said [\u{2026}] nothing.", "Then left."],
    ),
    (
        "وزعم أنه بريء (!) أمام القاضي.",
        &["وزعم أنه بريء (!) أمام القاضي."],
    ),
    (
        "انتهى الاجتماع.\u{200f} وقال الوزير",
        &["انتهى الاجتماع.\u{200f}", "وقال الوزير"],
    ),
    (
        "التقى \u{200f}د. محمد بالوزير.",
        &["التقى \u{200f}د. محمد بالوزير."],
    ),
    // --- Mixed lines.
    (
        "أنظر: Live Updates: Heavy Clashes Reported. 8.1.2022. Sputnik. On:",
        &[
            "أنظر: Live Updates: Heavy Clashes Reported.",
            "8.1.2022.",
            "Sputnik.",
            "On:",
        ],
    ),
    (
        "قرأت المقال. It was good. ثم نمت.",
        &["قرأت المقال.", "It was good.", "ثم نمت."],
    ),
    (
        "وقال: \u{200f}\"نعم\". \u{200f}وأضاف ذلك.",
        &["وقال: \u{200f}\"نعم\".", "\u{200f}وأضاف ذلك."],
    ),
    ("   ", &[]),
    ("\u{a0}\u{2003}\t", &[]),
    ("...", &["..."]),
    (".", &["."]),
    ("؟ لماذا", &["؟", "لماذا"]),
];

fn sentences(p: &str) -> Vec<&str> {
    sentence_ranges(p).into_iter().map(|r| &p[r]).collect()
}

#[test]
fn case_table() {
    assert!(CASES.len() >= 80, "only {} cases", CASES.len());
    let mut failures = Vec::new();
    for (input, expected) in CASES {
        let got = sentences(input);
        if got != *expected {
            failures.push(format!(
                "input:    {input:?}\nexpected: {expected:?}\ngot:      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn steps_for(text: &str) -> u64 {
    STEPS.with(|s| s.set(0));
    let ranges = sentence_ranges(text);
    assert!(ranges.iter().all(|r| !r.is_empty()));
    STEPS.with(|s| s.get())
}

/// `head` followed by `unit` repeated to about `bytes` bytes.
fn build(head: &str, unit: &str, bytes: usize) -> String {
    let mut s = String::from(head);
    s.push_str(&unit.repeat(bytes / unit.len() + 1));
    s
}

/// Work must grow linearly: 8x the input may cost at most 10x the steps.
#[test]
fn linear_steps() {
    const N: usize = 1 << 20;
    let inputs: &[(&str, &str)] = &[
        (
            "",
            "وقال د. محمد إن ك. ك. ماسيموف اعتقل في 7.1.2022 م. وأضاف \"لا!\" قال. ",
        ),
        (
            "",
            "Dr. E. Sanger said... U.S. No. 5 at https://bit.ly/x?q=1. Then? ",
        ),
        // One long word of digits and dots, and one long run of dots.
        ("", "1.2.3.4.5.6.7.8.9."),
        ("", "."),
        ("", "\u{a0}. "),
        ("", "“كازاخستان”.. "),
        ("", ". \u{200f}\u{200f}((((\"\""),
        ("", "a"),
        // What makes UAX #29's SB8 quadratic: a stop, then a long run of
        // spaces, closers, openers or digits before the next letter.
        ("a.", " "),
        ("a.", ")"),
        ("a. ", "("),
        ("a. ", "1 "),
        ("No.", " "),
        // Omission ellipses and their pair look-behind and look-ahead.
        ("", "(a... "),
        ("", "«قال، ... ثم "),
        ("(", "a... b... c... d. "),
        ("", "a, . . . b "),
        ("", "جي. كي. "),
    ];
    for &(head, unit) in inputs {
        let small = steps_for(&build(head, unit, N));
        let large = steps_for(&build(head, unit, 8 * N));
        assert!(
            large < 10 * small,
            "{head:?}+{unit:?}: {small} steps for 1 MB, {large} for 8 MB"
        );
        // Independent of the ratio: steps stay within a small multiple of the
        // length, so no part of the work hides a rescan.
        assert!(
            large < 4 * (8 * N as u64 + 64),
            "{head:?}+{unit:?}: {large}"
        );
    }
}

//! Free text from a hostile tenant is data, everywhere: what no format can
//! carry is refused before anything is stored; what is accepted lands in
//! YAML, shell and Discord Markdown quoted or escaped, and pings nobody.

use crate::harness::Orglink;

/// Customer names that no output can carry safely, and why each is refused.
const REFUSED: &[(&str, &str)] = &[
    ("Acme\u{2028}Transform: AWS::Include", "U+2028 LINE SEPARATOR at character 5"),
    ("Acme \u{202e}moc.live", "U+202E RIGHT-TO-LEFT OVERRIDE at character 6"),
    ("Acme\u{fffe}", "U+FFFE"),
];

#[test]
fn a_refused_customer_name_exits_2_and_stores_nothing() {
    let long = "x".repeat(101);
    let mut cases: Vec<(&str, &str)> = REFUSED.to_vec();
    cases.push((&long, "101"));
    for (lang, customer, expected) in
        cases.iter().flat_map(|(customer, expected)| ["en", "es"].map(|lang| (lang, *customer, *expected)))
    {
        let o = Orglink::new();
        let run = o.run(&[
            "account",
            "add",
            "123456789012",
            "--tenant",
            "acme",
            "--customer",
            customer,
            "--support",
            "basic",
            "--lang",
            lang,
        ]);
        assert_eq!(run.code, 2, "{customer:?}: {run:?}");
        let said = format!("{}{}", run.stdout, run.stderr);
        // English says it as the error's own text does; Spanish, in its
        // words, with the same code point or length.
        let expected = if lang == "en" { expected } else { expected.split(' ').next().unwrap() };
        assert!(said.contains(expected), "{lang} {customer:?}: {said}");
        // The message shows the character by its code, never as itself.
        assert!(!said.contains('\u{2028}') && !said.contains('\u{202e}'), "{said:?}");
        assert!(o.export().is_empty(), "nothing stored for {customer:?}");
    }
}

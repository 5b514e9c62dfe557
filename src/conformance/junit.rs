//! JUnit XML, the report format CI systems (GitHub Actions reporters,
//! GitLab, Jenkins) read: `testsuites > testsuite > testcase`, with a
//! `failure`, `error` or `skipped` child where a case did not pass.
//!
//! One `testsuite` per case suite (`tf1`, `keras3`, ...), one `testcase`
//! per case and dtype. An expected failure is reported as `skipped` (with
//! its reason), so CI shows it without failing; so is a case not exported.
//! Stale expected-failure entries are failing test cases of a suite named
//! `expectations`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::{failure_detail, Report};

/// Escape text for an XML attribute or element.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // As references, so that attribute values keep them too.
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", ch as u32)),
            c if is_xml_char(c) => out.push(c),
            // Characters XML 1.0 cannot hold at all, even as references:
            // written out as Rust escapes, so that nothing is lost.
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    out
}

/// Whether XML 1.0 can hold `c` (its `Char` production, less the three
/// white-space controls that [`escape`] writes as references).
fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

#[derive(Default)]
struct Suite {
    cases: Vec<String>,
    failures: usize,
    errors: usize,
    skipped: usize,
}

fn split_id(id: &str) -> (&str, &str) {
    id.split_once('/').unwrap_or(("cases", id))
}

/// The report as JUnit XML. `name` names the outer `testsuites`.
pub fn junit(report: &Report, name: &str) -> String {
    let mut suites: BTreeMap<String, Suite> = BTreeMap::new();
    let case = |suite: &str, test: &str, body: Option<String>| {
        let classname = format!("lstm-parity.{suite}");
        match body {
            None => format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"/>\n",
                escape(&classname),
                escape(test)
            ),
            Some(b) => format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n{b}    </testcase>\n",
                escape(&classname),
                escape(test)
            ),
        }
    };
    for r in &report.runs {
        let (suite, short) = split_id(&r.id);
        let test = format!("{short} [{}]", r.dtype);
        let entry = suites.entry(suite.to_string()).or_default();
        let body = match r.verdict() {
            "pass" => None,
            "xfail" => {
                entry.skipped += 1;
                Some(format!(
                    "      <skipped message=\"{}\"/>\n",
                    escape(&format!(
                        "expected failure: {}",
                        r.expected_failure.as_deref().unwrap_or("")
                    ))
                ))
            }
            _ => {
                entry.failures += 1;
                let detail = failure_detail(r);
                let message = detail.lines().next().unwrap_or("failed").to_string();
                let kind = if r.error.is_some() {
                    "could_not_run"
                } else {
                    "out_of_tolerance"
                };
                Some(format!(
                    "      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n",
                    escape(&message),
                    escape(&detail)
                ))
            }
        };
        entry.cases.push(case(suite, &test, body));
    }
    for k in &report.skipped {
        let (suite, short) = split_id(&k.id);
        let entry = suites.entry(suite.to_string()).or_default();
        entry.skipped += 1;
        let body = format!(
            "      <skipped message=\"{}\"/>\n",
            escape(&format!("not exported: {}", k.reason))
        );
        entry.cases.push(case(suite, short, Some(body)));
    }
    for e in &report.errors {
        let (suite, short) = split_id(&e.case);
        let entry = suites.entry(suite.to_string()).or_default();
        entry.errors += 1;
        let body = format!(
            "      <error message=\"{}\" type=\"bad_input\">{}</error>\n",
            escape(&e.message),
            escape(&e.message)
        );
        entry.cases.push(case(suite, short, Some(body)));
    }
    for (k, e) in report.expectation_errors.iter().enumerate() {
        let entry = suites.entry("expectations".to_string()).or_default();
        entry.failures += 1;
        let body = format!(
            "      <failure message=\"{}\" type=\"stale_expectation\">{}</failure>\n",
            escape(e),
            escape(e)
        );
        entry
            .cases
            .push(case("expectations", &format!("entry {k}"), Some(body)));
    }
    if report.nothing_checked() {
        let entry = suites.entry("nothing-checked".to_string()).or_default();
        entry.failures += 1;
        let body = "      <failure message=\"nothing was checked: no selected case ran\" type=\"nothing_checked\">a check of nothing is not a pass</failure>\n".to_string();
        entry
            .cases
            .push(case("nothing-checked", "nothing checked", Some(body)));
    }
    let total = |f: fn(&Suite) -> usize| suites.values().map(f).sum::<usize>();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"0\">",
        escape(name),
        total(|x| x.cases.len()),
        total(|x| x.failures),
        total(|x| x.errors),
        total(|x| x.skipped)
    );
    for (suite, x) in &suites {
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"0\">",
            escape(suite),
            x.cases.len(),
            x.failures,
            x.errors,
            x.skipped
        );
        for c in &x.cases {
            s.push_str(c);
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("x\u{1}y\nz\u{fffe}"), "x\\u{0001}y&#10;z\\u{fffe}");
    }

    proptest::proptest! {
        /// Any text, in an attribute and in an element, makes well-formed
        /// XML; text XML can hold reads back unchanged.
        #[test]
        fn any_text_makes_well_formed_xml(text in "\\PC*|[\\x00-\\x20\\u{fffe}\\u{ffff}\\u{fdd0}<>&'\"a]*") {
            let doc = format!("<a b=\"{}\">{}</a>", escape(&text), escape(&text));
            let parsed = roxmltree::Document::parse(&doc).expect("well-formed");
            let root = parsed.root_element();
            if text.chars().all(|c| super::is_xml_char(c) || matches!(c, '\t' | '\n' | '\r')) {
                proptest::prop_assert_eq!(root.attribute("b"), Some(text.as_str()));
                proptest::prop_assert_eq!(root.text().unwrap_or(""), text.as_str());
            }
        }
    }
}

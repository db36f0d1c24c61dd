use super::*;

/// A strict-enough XML well-formedness check for the SVG (the crate has no
/// XML parser, and the SVG uses no comments, CDATA or processing
/// instructions): every tag closes in order, every attribute is
/// `name="value"` once per element, text and values hold no raw `<`, and
/// every `&` starts one of the five entities or a numeric one. Returns the
/// element names in document order.
fn well_formed(xml: &str) -> Vec<String> {
    fn entities_ok(s: &str) -> bool {
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            rest = &rest[i + 1..];
            let Some(end) = rest.find(';') else {
                return false;
            };
            let name = &rest[..end];
            let numeric = name
                .strip_prefix('#')
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            if !(numeric || ["amp", "lt", "gt", "quot", "apos"].contains(&name)) {
                return false;
            }
        }
        true
    }
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = xml;
    assert!(rest.starts_with('<'), "starts with an element");
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..lt];
        assert!(!text.contains('>') && entities_ok(text), "text {text:?}");
        if lt == rest.len() {
            assert!(text.trim().is_empty(), "text after the root: {text:?}");
            break;
        }
        rest = &rest[lt + 1..];
        // A `>` inside a quoted value is legal XML but we never write one.
        let gt = rest.find('>').expect("a tag ends");
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "closing {name}");
            continue;
        }
        let (body, empty) = match tag.strip_suffix('/') {
            Some(b) => (b, true),
            None => (tag, false),
        };
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "element name {name:?}"
        );
        let mut attrs = body[name_end..].trim();
        let mut seen = Vec::new();
        while !attrs.is_empty() {
            let eq = attrs.find("=\"").expect("name=\"value\"");
            let attr = &attrs[..eq];
            assert!(
                attr.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
                "attribute {attr:?} of {name}"
            );
            assert!(!seen.contains(&attr), "{attr} twice in {name}");
            seen.push(attr);
            let value_and_rest = &attrs[eq + 2..];
            let close = value_and_rest.find('"').expect("value closes");
            let value = &value_and_rest[..close];
            assert!(
                !value.contains('<') && entities_ok(value),
                "{attr}={value:?}"
            );
            attrs = value_and_rest[close + 1..].trim_start();
        }
        names.push(name.to_string());
        if !empty {
            stack.push(name.to_string());
        }
        if stack.is_empty() {
            assert!(rest.trim().is_empty(), "one root element: {rest:?}");
            break;
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    names
}

fn months(values: &[u64]) -> Vec<MonthGrowth> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| MonthGrowth {
            month: format!("{}-{:02}", 2026 - (i < 1) as u32, (i as u32 + 11) % 12 + 1),
            active: *v,
            ..Default::default()
        })
        .collect()
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

#[test]
fn the_svg_is_well_formed_accessible_xml_with_a_bar_per_month() {
    let m = months(&[0, 5, 9, 12, 12, 15, 20, 22, 30, 31, 40, 41]);
    assert_eq!(m[0].month, "2025-12");
    assert_eq!(m[1].month, "2026-01");
    let svg = growth_svg(&m);
    let names = well_formed(&svg);
    assert_eq!(names[0], "svg");
    assert_eq!(count(&names, "rect"), 12);
    // The chart's title and description, and one title per bar.
    assert_eq!(count(&names, "title"), 13);
    assert_eq!(count(&names, "desc"), 1);
    assert!(svg.contains(r#"role="img""#));
    assert!(svg.contains(&format!(r#"aria-labelledby="{TITLE_ID} {DESC_ID}""#)));
    assert!(svg.contains(&format!(r#"<title id="{TITLE_ID}">"#)));
    // The numbers are in the description, in order.
    assert!(svg.contains("2025-12: 0; 2026-01: 5; 2026-02: 9;"), "{svg}");
    assert!(svg.contains("2026-11: 41."), "{svg}");
    // Axis labels: the months (the year at the first bar and at January)
    // and the ticks: 4 steps reaching 41 are steps of 20.
    assert!(svg.contains(">Dec</text>") && svg.contains(">Jan</text>"));
    assert!(svg.contains(">2025</text>") && svg.contains(">2026</text>"));
    for tick in ["0", "20", "40", "60", "80"] {
        assert!(svg.contains(&format!(">{tick}</text>")), "tick {tick}");
    }
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    // Nothing the console's CSP would refuse.
    assert!(!svg.contains("style") && !svg.contains("<script"));
}

#[test]
fn scales_hold_for_nothing_one_and_a_million() {
    for (values, top_tick) in [
        (vec![0u64; 12], "4"),
        (vec![1; 12], "4"),
        (vec![1_000_000; 12], "1M"),
        (vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 999_999, 1_000_000], "1M"),
    ] {
        let svg = growth_svg(&months(&values));
        let names = well_formed(&svg);
        assert_eq!(count(&names, "rect"), 12);
        assert!(
            svg.contains(&format!(">{top_tick}</text>")),
            "top tick {top_tick}: {svg}"
        );
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // Bar heights: whole numbers, within the plot.
        for h in svg.split(r#"height=""#).skip(1) {
            let h: u64 = h[..h.find('"').unwrap()].parse().unwrap();
            assert!(h <= HEIGHT - TOP - BOTTOM, "{h}");
        }
    }
    // A million fills the plot; zero draws nothing (a zero-height bar).
    let svg = growth_svg(&months(&[1_000_000, 0]));
    assert!(svg.contains(&format!(r#"height="{}""#, HEIGHT - TOP - BOTTOM)));
    assert!(svg.contains(r#"height="0""#));
    assert!(svg.contains("1,000,000 active"));
    // Extreme counts neither overflow nor panic.
    well_formed(&growth_svg(&months(&[u64::MAX, u64::MAX / 3])));
    // No points: empty axes, still valid.
    let names = well_formed(&growth_svg(&[]));
    assert_eq!(count(&names, "rect"), 0);
}

#[test]
fn month_keys_are_escaped_even_when_they_are_not_dates() {
    let evil = [MonthGrowth {
        month: r#"<script>"&'-x"#.into(),
        active: 3,
        ..Default::default()
    }];
    let svg = growth_svg(&evil);
    well_formed(&svg);
    assert!(!svg.contains("<script>"));
    assert!(svg.contains("&lt;script&gt;&quot;&amp;&#39;"));
}

#[test]
fn labels_are_short_and_numbers_have_separators() {
    assert_eq!(
        [0, 999, 1_000, 1_500, 12_345, 999_999, 1_000_000, 2_500_000].map(compact),
        ["0", "999", "1k", "1.5k", "12.3k", "999k", "1M", "2.5M"]
    );
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000), "1,000");
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(
        [0, 1, 4, 5, 41, 90, 1_000_000].map(tick_step),
        [1, 1, 1, 2, 20, 25, 250_000]
    );
    assert!(tick_step(u64::MAX) >= u64::MAX / TICKS);
    assert_eq!(month_name("01"), Some("Jan"));
    assert_eq!(month_name("12"), Some("Dec"));
    assert_eq!(month_name("13"), None);
    assert_eq!(month_name("00"), None);
}

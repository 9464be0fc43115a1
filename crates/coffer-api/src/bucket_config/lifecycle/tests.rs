//! Parsing, validation, canonical storage and rendering of lifecycle
//! rules in both dialects, and their evaluation with fixed clocks.

use super::*;
use crate::error::ErrorCode;
use coffer_store::Versioning;

const NS: &str = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";

fn s3(rules: &str) -> ApiResult<LifecycleConfiguration> {
    parse_s3(format!("<LifecycleConfiguration {NS}>{rules}</LifecycleConfiguration>").as_bytes())
}

fn oss(rules: &str) -> ApiResult<LifecycleConfiguration> {
    parse_oss(format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>").as_bytes())
}

fn code(r: ApiResult<LifecycleConfiguration>) -> Option<ErrorCode> {
    r.err().map(|e| e.code)
}

/// Milliseconds of `2024-01-<day>T<hour>:00:00Z`.
fn jan(day: i64, hour: i64) -> i64 {
    const JAN_1_2024: i64 = 1_704_067_200_000;
    JAN_1_2024 + (day - 1) * DAY_MS + hour * 3_600_000
}

// ------------------------------------------------------------------ parsing

#[test]
fn s3_filters_in_every_form() {
    let config = s3(concat!(
        "<Rule><ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>",
        "<Rule><ID>b</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>",
        "<Rule><ID>c</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value>2</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>",
        "<Rule><ID>d</ID><Prefix>old/</Prefix><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
        "<Rule><Filter></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>",
    ))
    .expect("valid");
    let r = &config.rules;
    assert_eq!(r.len(), 5);
    assert_eq!(r[0].filter.prefix, "logs/");
    assert_eq!(r[0].expiration, Some(Expiration::Days(30)));
    assert!(!r[0].legacy_prefix);
    assert!(!r[1].enabled);
    assert_eq!(r[1].filter.tags, vec![("k".to_owned(), "v".to_owned())]);
    assert_eq!(r[1].expiration, Some(Expiration::Date(1_893_456_000_000)));
    assert_eq!(r[2].filter.tags.len(), 2);
    assert_eq!(r[2].filter.size_greater_than, Some(10));
    assert_eq!(r[2].filter.size_less_than, Some(100));
    assert_eq!(
        r[2].noncurrent_expiration,
        Some(NoncurrentExpiration {
            noncurrent_days: 7,
            newer_noncurrent_versions: Some(3)
        })
    );
    assert!(r[3].legacy_prefix);
    assert_eq!(r[3].abort_upload, Some(AbortUpload::DaysAfterInitiation(2)));
    assert_eq!(r[4].id, "rule-5", "a rule without ID gets one");
    assert_eq!(r[4].filter, RuleFilter::default());
    assert_eq!(r[4].expiration, Some(Expiration::ExpiredObjectDeleteMarker));
}

#[test]
fn s3_validation_matches_aws() {
    let rule = |body: &str| {
        format!(
            "<Rule><ID>r</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>{body}</Rule>"
        )
    };
    let invalid_argument = Some(ErrorCode::InvalidArgument);
    let invalid_request = Some(ErrorCode::InvalidRequest);
    let malformed = Some(ErrorCode::MalformedXML);
    // Days must be positive.
    for days in ["0", "-1"] {
        assert_eq!(
            code(s3(&rule(&format!(
                "<Expiration><Days>{days}</Days></Expiration>"
            )))),
            invalid_argument,
            "{days}"
        );
    }
    assert_eq!(
        code(s3(&rule("<Expiration><Days>ten</Days></Expiration>"))),
        malformed
    );
    assert_eq!(
        code(s3(&rule(
            "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>"
        ))),
        invalid_argument
    );
    assert_eq!(
        code(s3(&rule(
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        ))),
        invalid_argument
    );
    assert_eq!(
        code(s3(&rule(
            "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>"
        ))),
        invalid_argument
    );
    // Date at midnight UTC only.
    assert_eq!(
        code(s3(&rule(
            "<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>"
        ))),
        invalid_argument
    );
    assert!(
        s3(&rule(
            "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>"
        ))
        .is_ok()
    );
    // One of Days, Date, ExpiredObjectDeleteMarker.
    assert_eq!(
        code(s3(&rule(
            "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
        ))),
        malformed
    );
    assert_eq!(code(s3(&rule("<Expiration></Expiration>"))), malformed);
    // An action is needed.
    assert_eq!(code(s3(&rule(""))), invalid_request);
    // Transitions are refused, with the reason.
    let t = s3(&rule(
        "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>",
    ));
    let error = t.expect_err("refused");
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(
        error.message.contains("one storage class"),
        "{}",
        error.message
    );
    assert_eq!(
        code(s3(&rule(
            "<Expiration><Days>1</Days></Expiration><NoncurrentVersionTransition><NoncurrentDays>1</NoncurrentDays><StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>"
        ))),
        invalid_request
    );
    // Status is Enabled or Disabled.
    assert_eq!(
        code(s3(
            "<Rule><ID>r</ID><Prefix/><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"
        )),
        malformed
    );
    // Prefix xor Filter.
    assert_eq!(
        code(s3(
            "<Rule><ID>r</ID><Prefix>a</Prefix><Filter><Prefix>a</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
        )),
        malformed
    );
    assert_eq!(
        code(s3(
            "<Rule><ID>r</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
        )),
        malformed
    );
    // Two conditions need <And>.
    assert_eq!(
        code(s3(
            "<Rule><ID>r</ID><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
        )),
        malformed
    );
    // Duplicate IDs, too long IDs.
    let one = rule("<Expiration><Days>1</Days></Expiration>");
    assert_eq!(code(s3(&format!("{one}{one}"))), invalid_argument);
    let long_id = format!(
        "<Rule><ID>{}</ID><Prefix/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
        "x".repeat(256)
    );
    assert_eq!(code(s3(&long_id)), invalid_argument);
    // No rules; more than 1000 rules.
    assert_eq!(code(s3("")), malformed);
    let many: String = (0..1001)
        .map(|i| format!("<Rule><ID>r{i}</ID><Prefix/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"))
        .collect();
    assert_eq!(code(s3(&many)), invalid_argument);
    let most: String = (0..1000)
        .map(|i| format!("<Rule><ID>r{i}</ID><Prefix/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"))
        .collect();
    assert_eq!(s3(&most).expect("1000 rules are fine").rules.len(), 1000);
    // Size bounds.
    assert_eq!(
        code(s3(
            "<Rule><ID>r</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
        )),
        invalid_argument
    );
    // Tags: limits, duplicates, and actions that cannot have them.
    let tagged = |tags: &str, action: &str| {
        format!(
            "<Rule><ID>r</ID><Filter><And><Prefix>p</Prefix>{tags}</And></Filter><Status>Enabled</Status>{action}</Rule>"
        )
    };
    let tag = |k: &str| format!("<Tag><Key>{k}</Key><Value>v</Value></Tag>");
    let days = "<Expiration><Days>1</Days></Expiration>";
    assert_eq!(
        code(s3(&tagged(&format!("{}{}", tag("a"), tag("a")), days))),
        invalid_request
    );
    assert_eq!(
        code(s3(&tagged(&tag(&"k".repeat(129)), days))),
        Some(ErrorCode::InvalidTag)
    );
    assert_eq!(
        code(s3(&tagged(
            &tag("a"),
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        ))),
        invalid_request
    );
    assert_eq!(
        code(s3(&tagged(
            &tag("a"),
            "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
        ))),
        invalid_request
    );
    // Not XML at all.
    assert_eq!(code(parse_s3(b"<LifecycleConfiguration><Rule>")), malformed);
}

#[test]
fn oss_form_parses() {
    // What oss2 sends: rule-level Prefix and Tag, Filter with sizes and Not,
    // ExpiredObjectDeleteMarker as Python writes booleans.
    let config = oss(concat!(
        "<Rule><ID>r1</ID><Prefix>logs/</Prefix><Status>Enabled</Status><Expiration><Days>3</Days></Expiration>",
        "<Tag><Key>k</Key><Value>v</Value></Tag><NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays></NoncurrentVersionExpiration>",
        "<Filter><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan><Not><Prefix>logs/keep/</Prefix><Tag><Key>hold</Key><Value>yes</Value></Tag></Not></Filter></Rule>",
        "<Rule><ID>r2</ID><Prefix></Prefix><Status>Disabled</Status><Expiration><CreatedBeforeDate>2023-06-01T00:00:00.000Z</CreatedBeforeDate></Expiration>",
        "<AbortMultipartUpload><CreatedBeforeDate>2024-01-01T00:00:00.000Z</CreatedBeforeDate></AbortMultipartUpload></Rule>",
        "<Rule><ID>r3</ID><Prefix>x</Prefix><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>True</ExpiredObjectDeleteMarker></Expiration></Rule>",
    ))
    .expect("valid");
    let r = &config.rules;
    assert_eq!(r[0].filter.prefix, "logs/");
    assert_eq!(r[0].filter.tags, vec![("k".to_owned(), "v".to_owned())]);
    assert_eq!(r[0].filter.size_greater_than, Some(1));
    assert_eq!(
        r[0].filter.not,
        vec![NotFilter {
            prefix: "logs/keep/".into(),
            tag: Some(("hold".into(), "yes".into()))
        }]
    );
    assert_eq!(
        r[1].abort_upload,
        Some(AbortUpload::CreatedBeforeDate(jan(1, 0)))
    );
    assert_eq!(
        r[0].noncurrent_expiration.map(|n| n.noncurrent_days),
        Some(5)
    );
    assert_eq!(
        r[1].expiration,
        Some(Expiration::CreatedBeforeDate(1_685_577_600_000))
    );
    assert_eq!(r[2].expiration, Some(Expiration::ExpiredObjectDeleteMarker));
}

#[test]
fn oss_validation_uses_invalid_argument_with_ecs() {
    let rule = |body: &str| {
        format!("<Rule><ID>r</ID><Prefix>p</Prefix><Status>Enabled</Status>{body}</Rule>")
    };
    let both = oss(&rule("<Expiration><Days>1</Days><CreatedBeforeDate>2024-01-01T00:00:00.000Z</CreatedBeforeDate></Expiration>"))
        .expect_err("exclusive");
    assert_eq!(
        (both.code, both.oss_ec()),
        (ErrorCode::InvalidArgument, "0014-00000061")
    );
    let empty = oss(&rule("<Expiration></Expiration>")).expect_err("empty");
    assert_eq!(
        (empty.code, empty.oss_ec()),
        (ErrorCode::InvalidArgument, "0014-00000060")
    );
    let noon = oss(&rule(
        "<Expiration><CreatedBeforeDate>2024-01-01T12:00:00.000Z</CreatedBeforeDate></Expiration>",
    ))
    .expect_err("midnight only");
    assert_eq!(
        (noon.code, noon.oss_ec()),
        (ErrorCode::InvalidArgument, "0014-00000087")
    );
    assert_eq!(
        code(oss(&rule("<Expiration><Days>0</Days></Expiration>"))),
        Some(ErrorCode::InvalidArgument)
    );
    // Uploads have no tags: a tagged rule cannot abort them.
    assert_eq!(
        code(oss(
            "<Rule><ID>r</ID><Prefix>p</Prefix><Status>Enabled</Status><AbortMultipartUpload><Days>1</Days></AbortMultipartUpload><Tag><Key>k</Key><Value>v</Value></Tag></Rule>"
        )),
        Some(ErrorCode::InvalidRequest)
    );
    assert_eq!(
        code(oss(&rule(
            "<Transition><Days>30</Days><StorageClass>IA</StorageClass></Transition>"
        ))),
        Some(ErrorCode::InvalidRequest)
    );
}

// ----------------------------------------------- storage and rendering

#[test]
fn one_canonical_document_renders_in_both_dialects() {
    let config = s3(concat!(
        "<Rule><ID>tagged</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v &amp; w</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>",
        "<Rule><ID>legacy</ID><Prefix>tmp/</Prefix><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>",
    ))
    .expect("valid");
    let json = serde_json::to_string(&config).expect("json");
    let stored: LifecycleConfiguration = serde_json::from_str(&json).expect("decodes");
    assert_eq!(stored, config);

    let s3_xml = render_s3(&stored);
    assert!(s3_xml.contains(NS));
    assert!(s3_xml.contains("<Rule><ID>tagged</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v &amp; w</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"), "{s3_xml}");
    assert!(s3_xml.contains("<Rule><ID>legacy</ID><Prefix>tmp/</Prefix><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"), "{s3_xml}");
    assert_eq!(parse_s3(s3_xml.as_bytes()).expect("S3 round trip"), config);

    let oss_xml = render_oss(&stored);
    assert!(!oss_xml.contains("xmlns"));
    assert!(oss_xml.contains("<Rule><ID>tagged</ID><Prefix>a/</Prefix><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><Tag><Key>k</Key><Value>v &amp; w</Value></Tag><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays></NoncurrentVersionExpiration></Rule>"), "{oss_xml}");
    assert!(oss_xml.contains("<AbortMultipartUpload><Days>1</Days></AbortMultipartUpload>"));
    let back = parse_oss(oss_xml.as_bytes()).expect("OSS reads its own");
    assert_eq!(back.rules[0].filter, config.rules[0].filter);
    assert_eq!(back.rules[1].abort_upload, config.rules[1].abort_upload);
}

#[test]
fn oss_rules_render_in_s3_and_back() {
    let config = oss(concat!(
        "<Rule><ID>o</ID><Prefix>p/</Prefix><Status>Enabled</Status><Expiration><CreatedBeforeDate>2024-01-01T00:00:00.000Z</CreatedBeforeDate></Expiration>",
        "<Filter><ObjectSizeLessThan>9</ObjectSizeLessThan><Not><Prefix>p/keep</Prefix></Not></Filter></Rule>",
    ))
    .expect("valid");
    let oss_xml = render_oss(&config);
    assert!(oss_xml.contains("<CreatedBeforeDate>2024-01-01T00:00:00.000Z</CreatedBeforeDate>"));
    assert!(oss_xml.contains("<Filter><ObjectSizeLessThan>9</ObjectSizeLessThan><Not><Prefix>p/keep</Prefix></Not></Filter>"), "{oss_xml}");
    assert_eq!(parse_oss(oss_xml.as_bytes()).expect("round trip"), config);
    let s3_xml = render_s3(&config);
    assert!(s3_xml.contains("<Prefix>p/</Prefix><Status>Enabled</Status><Expiration><Date>2024-01-01T00:00:00.000Z</Date></Expiration>"), "{s3_xml}");
}

// ------------------------------------------------------------ evaluation

fn rule(id: &str, filter: RuleFilter) -> LifecycleRule {
    LifecycleRule {
        id: id.into(),
        enabled: true,
        filter,
        legacy_prefix: false,
        expiration: None,
        noncurrent_expiration: None,
        abort_upload: None,
    }
}

fn config(rules: Vec<LifecycleRule>) -> LifecycleConfiguration {
    LifecycleConfiguration { rules }
}

const NO_TAGS: &[(String, String)] = &[];

fn current(key: &'static str, written: i64) -> VersionFacts<'static> {
    VersionFacts {
        key,
        size: 100,
        tags: NO_TAGS,
        last_modified_ms: written,
        is_latest: true,
        is_delete_marker: false,
        noncurrent_since_ms: None,
        newer_noncurrent_versions: 0,
        only_version: true,
    }
}

fn action(c: &LifecycleConfiguration, now: i64, v: &VersionFacts) -> Option<LifecycleAction> {
    action_for_version(c, Versioning::Unversioned, now, v).map(|d| d.action)
}

const EXPIRE: Option<LifecycleAction> = Some(LifecycleAction::ExpireCurrent {
    add_delete_marker: false,
});

#[test]
fn days_round_up_to_the_next_midnight() {
    let mut r = rule("d", RuleFilter::default());
    r.expiration = Some(Expiration::Days(1));
    let c = config(vec![r]);
    let v = current("k", jan(1, 10));
    // Written Jan 1 10:00, one day: due from Jan 3 00:00, not at Jan 2 10:00.
    assert_eq!(action(&c, jan(2, 10), &v), None);
    assert_eq!(action(&c, jan(3, 0) - 1, &v), None);
    assert_eq!(action(&c, jan(3, 0), &v), EXPIRE);
    // Written exactly at midnight: due exactly one day later.
    let midnight = current("k", jan(1, 0));
    assert_eq!(action(&c, jan(2, 0) - 1, &midnight), None);
    assert_eq!(action(&c, jan(2, 0), &midnight), EXPIRE);
    // Versioned buckets get a delete marker instead.
    for versioning in [Versioning::Enabled, Versioning::Suspended] {
        let due = action_for_version(&c, versioning, jan(9, 0), &v).expect("due");
        assert_eq!(
            due,
            DueAction {
                action: LifecycleAction::ExpireCurrent {
                    add_delete_marker: true
                },
                rule_id: "d"
            }
        );
    }
}

#[test]
fn date_and_created_before_date() {
    let mut by_date = rule("date", RuleFilter::default());
    by_date.expiration = Some(Expiration::Date(jan(10, 0)));
    let c = config(vec![by_date]);
    // Every current version from the date on, however new.
    assert_eq!(action(&c, jan(10, 0) - 1, &current("k", jan(1, 0))), None);
    assert_eq!(action(&c, jan(10, 0), &current("k", jan(1, 0))), EXPIRE);
    assert_eq!(action(&c, jan(20, 0), &current("k", jan(19, 0))), EXPIRE);

    let mut before = rule("before", RuleFilter::default());
    before.expiration = Some(Expiration::CreatedBeforeDate(jan(10, 0)));
    let c = config(vec![before]);
    assert_eq!(action(&c, jan(5, 0), &current("k", jan(9, 23))), EXPIRE);
    assert_eq!(action(&c, jan(30, 0), &current("k", jan(10, 0))), None);
}

#[test]
fn disabled_rules_and_filters() {
    let mut r = rule(
        "f",
        RuleFilter {
            prefix: "logs/".into(),
            tags: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
            size_greater_than: Some(10),
            size_less_than: Some(1000),
            not: vec![NotFilter {
                prefix: "logs/keep/".into(),
                tag: None,
            }],
        },
    );
    r.expiration = Some(Expiration::Days(1));
    let c = config(vec![r.clone()]);
    let tags = vec![
        ("a".to_owned(), "1".to_owned()),
        ("b".to_owned(), "2".to_owned()),
        ("c".to_owned(), "3".to_owned()),
    ];
    let later = jan(30, 0);
    let v = |key: &'static str, size: u64, tags: &'static [(String, String)]| VersionFacts {
        size,
        tags,
        ..current(key, jan(1, 0))
    };
    let tags: &'static [(String, String)] = Box::leak(tags.into_boxed_slice());
    assert_eq!(action(&c, later, &v("logs/x", 100, tags)), EXPIRE);
    assert_eq!(action(&c, later, &v("other/x", 100, tags)), None, "prefix");
    assert_eq!(
        action(&c, later, &v("logs/x", 100, &tags[..1])),
        None,
        "every tag"
    );
    let wrong_value: &'static [(String, String)] = Box::leak(
        vec![
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x".to_owned()),
        ]
        .into_boxed_slice(),
    );
    assert_eq!(
        action(&c, later, &v("logs/x", 100, wrong_value)),
        None,
        "tag value"
    );
    assert_eq!(
        action(&c, later, &v("logs/x", 10, tags)),
        None,
        "strictly greater"
    );
    assert_eq!(action(&c, later, &v("logs/x", 11, tags)), EXPIRE);
    assert_eq!(
        action(&c, later, &v("logs/x", 1000, tags)),
        None,
        "strictly less"
    );
    assert_eq!(action(&c, later, &v("logs/x", 999, tags)), EXPIRE);
    assert_eq!(
        action(&c, later, &v("logs/keep/x", 100, tags)),
        None,
        "Not prefix"
    );
    r.enabled = false;
    assert_eq!(
        action(&config(vec![r]), later, &v("logs/x", 100, tags)),
        None,
        "disabled"
    );
}

#[test]
fn noncurrent_versions_count_from_when_they_became_noncurrent() {
    let mut r = rule("nc", RuleFilter::default());
    r.noncurrent_expiration = Some(NoncurrentExpiration {
        noncurrent_days: 2,
        newer_noncurrent_versions: None,
    });
    let c = config(vec![r]);
    let old = VersionFacts {
        is_latest: false,
        noncurrent_since_ms: Some(jan(10, 5)),
        only_version: false,
        ..current("k", jan(1, 0))
    };
    // Noncurrent since Jan 10 05:00, two days: due Jan 13 00:00.
    assert_eq!(action(&c, jan(13, 0) - 1, &old), None);
    assert_eq!(
        action(&c, jan(13, 0), &old),
        Some(LifecycleAction::DeleteNoncurrent)
    );
    // Unknown noncurrent time: never.
    let unknown = VersionFacts {
        noncurrent_since_ms: None,
        ..old
    };
    assert_eq!(action(&c, jan(31, 0), &unknown), None);
    // Current versions are not touched by a noncurrent rule.
    assert_eq!(action(&c, jan(31, 0), &current("k", jan(1, 0))), None);
    // Noncurrent delete markers are noncurrent versions too.
    let marker = VersionFacts {
        is_delete_marker: true,
        ..old
    };
    assert_eq!(
        action(&c, jan(13, 0), &marker),
        Some(LifecycleAction::DeleteNoncurrent)
    );
}

#[test]
fn newer_noncurrent_versions_are_kept() {
    let mut r = rule("keep2", RuleFilter::default());
    r.noncurrent_expiration = Some(NoncurrentExpiration {
        noncurrent_days: 1,
        newer_noncurrent_versions: Some(2),
    });
    let c = config(vec![r]);
    let nth = |newer: u32| VersionFacts {
        is_latest: false,
        noncurrent_since_ms: Some(jan(1, 0)),
        newer_noncurrent_versions: newer,
        only_version: false,
        ..current("k", jan(1, 0))
    };
    let now = jan(20, 0);
    assert_eq!(action(&c, now, &nth(0)), None, "newest noncurrent kept");
    assert_eq!(action(&c, now, &nth(1)), None, "second newest kept");
    assert_eq!(
        action(&c, now, &nth(2)),
        Some(LifecycleAction::DeleteNoncurrent)
    );
    assert_eq!(
        action(&c, now, &nth(5)),
        Some(LifecycleAction::DeleteNoncurrent)
    );
}

#[test]
fn expired_delete_markers() {
    let marker = |only: bool| VersionFacts {
        is_delete_marker: true,
        size: 0,
        only_version: only,
        ..current("k", jan(5, 12))
    };
    let mut explicit = rule("edm", RuleFilter::default());
    explicit.expiration = Some(Expiration::ExpiredObjectDeleteMarker);
    let c = config(vec![explicit]);
    // Removed as soon as it is the only version, whatever its age.
    assert_eq!(
        action(&c, jan(5, 13), &marker(true)),
        Some(LifecycleAction::RemoveExpiredDeleteMarker)
    );
    assert_eq!(
        action(&c, jan(30, 0), &marker(false)),
        None,
        "versions behind it"
    );
    // Never expires a current object.
    assert_eq!(action(&c, jan(30, 0), &current("k", jan(1, 0))), None);

    // A Days expiration removes it once the marker itself is old enough.
    let mut days = rule("days", RuleFilter::default());
    days.expiration = Some(Expiration::Days(3));
    let c = config(vec![days]);
    assert_eq!(action(&c, jan(9, 0) - 1, &marker(true)), None);
    assert_eq!(
        action(&c, jan(9, 0), &marker(true)),
        Some(LifecycleAction::RemoveExpiredDeleteMarker)
    );
    assert_eq!(action(&c, jan(30, 0), &marker(false)), None);
}

#[test]
fn the_first_rule_that_makes_an_action_due_is_reported() {
    let mut late = rule("late", RuleFilter::default());
    late.expiration = Some(Expiration::Days(100));
    let mut soon = rule(
        "soon",
        RuleFilter {
            prefix: "a".into(),
            ..RuleFilter::default()
        },
    );
    soon.expiration = Some(Expiration::Days(1));
    let c = config(vec![late, soon]);
    let due = action_for_version(
        &c,
        Versioning::Unversioned,
        jan(10, 0),
        &current("ab", jan(1, 0)),
    );
    assert_eq!(due.map(|d| d.rule_id), Some("soon"));
}

#[test]
fn uploads_are_aborted_after_their_days() {
    let mut r = rule(
        "abort",
        RuleFilter {
            prefix: "tmp/".into(),
            ..RuleFilter::default()
        },
    );
    r.abort_upload = Some(AbortUpload::DaysAfterInitiation(2));
    let mut before = rule("before", RuleFilter::default());
    before.abort_upload = Some(AbortUpload::CreatedBeforeDate(jan(2, 0)));
    before.enabled = false;
    let mut c = config(vec![r, before]);
    let upload = UploadFacts {
        key: "tmp/big",
        initiated_ms: jan(1, 8),
    };
    assert_eq!(upload_due_for_abort(&c, jan(4, 0) - 1, &upload), None);
    assert_eq!(upload_due_for_abort(&c, jan(4, 0), &upload), Some("abort"));
    let elsewhere = UploadFacts {
        key: "data/big",
        initiated_ms: jan(1, 8),
    };
    assert_eq!(
        upload_due_for_abort(&c, jan(30, 0), &elsewhere),
        None,
        "disabled rule ignored"
    );
    c.rules[1].enabled = true;
    assert_eq!(
        upload_due_for_abort(&c, jan(1, 9), &elsewhere),
        Some("before")
    );
}

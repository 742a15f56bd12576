//! Unit tests of the StandardAuthorizer rules.

use std::net::IpAddr;

use uuid::Uuid;

use super::*;
use crate::security::KafkaPrincipal;

fn acl(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    host: &str,
    op: AclOperation,
    perm: AclPermission,
) -> StandardAcl {
    StandardAcl {
        resource_type: rt,
        resource_name: name.to_string(),
        pattern_type: pt,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: op,
        permission: perm,
    }
}

fn topic_allow(name: &str, pt: PatternType, principal: &str, op: AclOperation) -> StandardAcl {
    acl(
        ResourceType::Topic,
        name,
        pt,
        principal,
        "*",
        op,
        AclPermission::Allow,
    )
}

fn set(settings: &AuthorizerSettings, acls: Vec<StandardAcl>) -> AclSet {
    let mut s = AclSet::new(settings);
    for (i, a) in acls.into_iter().enumerate() {
        s.insert(Uuid::from_u64_pair(0, i as u64 + 1), a);
    }
    s
}

fn local() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn alice() -> KafkaPrincipal {
    KafkaPrincipal::user("alice")
}

fn can(s: &AclSet, who: &KafkaPrincipal, op: AclOperation, rt: ResourceType, name: &str) -> bool {
    s.authorize(who, local(), op, rt, name) == Decision::Allowed
}

#[test]
fn no_acl_denies_by_default_and_allows_when_configured() {
    let strict = set(&AuthorizerSettings::default(), vec![]);
    assert!(!can(
        &strict,
        &alice(),
        AclOperation::Write,
        ResourceType::Topic,
        "t"
    ));
    let open = AuthorizerSettings {
        enabled: true,
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    };
    // An ACL on another topic does not count; an ACL naming this topic (for bob) does.
    let s = set(
        &open,
        vec![topic_allow(
            "t",
            PatternType::Literal,
            "User:bob",
            AclOperation::Read,
        )],
    );
    assert!(can(
        &s,
        &alice(),
        AclOperation::Write,
        ResourceType::Topic,
        "other"
    ));
    assert!(!can(
        &s,
        &alice(),
        AclOperation::Write,
        ResourceType::Topic,
        "t"
    ));
}

#[test]
fn literal_prefixed_and_wildcard_patterns() {
    let s = set(
        &AuthorizerSettings::default(),
        vec![
            topic_allow(
                "orders",
                PatternType::Literal,
                "User:alice",
                AclOperation::Write,
            ),
            topic_allow(
                "logs-",
                PatternType::Prefixed,
                "User:alice",
                AclOperation::Read,
            ),
            topic_allow(
                "*",
                PatternType::Literal,
                "User:alice",
                AclOperation::Create,
            ),
        ],
    );
    let a = alice();
    assert!(can(
        &s,
        &a,
        AclOperation::Write,
        ResourceType::Topic,
        "orders"
    ));
    assert!(!can(
        &s,
        &a,
        AclOperation::Write,
        ResourceType::Topic,
        "orders2"
    ));
    assert!(!can(
        &s,
        &a,
        AclOperation::Write,
        ResourceType::Topic,
        "order"
    ));
    assert!(can(
        &s,
        &a,
        AclOperation::Read,
        ResourceType::Topic,
        "logs-app"
    ));
    assert!(can(
        &s,
        &a,
        AclOperation::Read,
        ResourceType::Topic,
        "logs-"
    ));
    assert!(!can(
        &s,
        &a,
        AclOperation::Read,
        ResourceType::Topic,
        "logs"
    ));
    assert!(can(
        &s,
        &a,
        AclOperation::Create,
        ResourceType::Topic,
        "anything"
    ));
    // A literal `*` is only the wildcard for its own resource type; a prefixed `*` is a
    // prefix of names starting with `*`.
    assert!(!can(&s, &a, AclOperation::Create, ResourceType::Group, "g"));
}

#[test]
fn principal_and_host_matching() {
    let s = set(
        &AuthorizerSettings::default(),
        vec![
            acl(
                ResourceType::Group,
                "g",
                PatternType::Literal,
                "User:*",
                "10.0.0.1",
                AclOperation::Read,
                AclPermission::Allow,
            ),
            acl(
                ResourceType::Group,
                "h",
                PatternType::Literal,
                "User:bob",
                "*",
                AclOperation::Read,
                AclPermission::Allow,
            ),
        ],
    );
    let from: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(
        s.authorize(&alice(), from, AclOperation::Read, ResourceType::Group, "g"),
        Decision::Allowed
    );
    assert!(!can(
        &s,
        &alice(),
        AclOperation::Read,
        ResourceType::Group,
        "g"
    ));
    assert!(!can(
        &s,
        &alice(),
        AclOperation::Read,
        ResourceType::Group,
        "h"
    ));
    assert!(can(
        &s,
        &KafkaPrincipal::user("bob"),
        AclOperation::Read,
        ResourceType::Group,
        "h"
    ));
}

#[test]
fn deny_wins_and_implies_nothing() {
    let s = set(
        &AuthorizerSettings::default(),
        vec![
            topic_allow("t", PatternType::Prefixed, "User:*", AclOperation::All),
            acl(
                ResourceType::Topic,
                "t1",
                PatternType::Literal,
                "User:alice",
                "*",
                AclOperation::Read,
                AclPermission::Deny,
            ),
        ],
    );
    let a = alice();
    assert!(!can(&s, &a, AclOperation::Read, ResourceType::Topic, "t1"));
    // A DENY of READ does not deny DESCRIBE (Kafka: the implications are ALLOW-only).
    assert!(can(
        &s,
        &a,
        AclOperation::Describe,
        ResourceType::Topic,
        "t1"
    ));
    assert!(can(&s, &a, AclOperation::Write, ResourceType::Topic, "t1"));
    assert!(can(
        &s,
        &KafkaPrincipal::user("bob"),
        AclOperation::Read,
        ResourceType::Topic,
        "t1"
    ));
}

#[test]
fn implied_operations() {
    let s = set(
        &AuthorizerSettings::default(),
        vec![
            topic_allow("r", PatternType::Literal, "User:alice", AclOperation::Read),
            topic_allow(
                "c",
                PatternType::Literal,
                "User:alice",
                AclOperation::AlterConfigs,
            ),
            topic_allow(
                "d",
                PatternType::Literal,
                "User:alice",
                AclOperation::Describe,
            ),
        ],
    );
    let a = alice();
    assert!(can(
        &s,
        &a,
        AclOperation::Describe,
        ResourceType::Topic,
        "r"
    ));
    assert!(!can(&s, &a, AclOperation::Write, ResourceType::Topic, "r"));
    assert!(can(
        &s,
        &a,
        AclOperation::DescribeConfigs,
        ResourceType::Topic,
        "c"
    ));
    assert!(!can(
        &s,
        &a,
        AclOperation::Describe,
        ResourceType::Topic,
        "c"
    ));
    assert!(!can(&s, &a, AclOperation::Read, ResourceType::Topic, "d"));
}

#[test]
fn super_users_bypass() {
    let settings = AuthorizerSettings::parse(
        Some(settings::STANDARD_AUTHORIZER),
        Some(" User:admin ; ;User:ops"),
        None,
    )
    .unwrap();
    assert_eq!(settings.super_users, vec!["User:admin", "User:ops"]);
    let s = set(
        &settings,
        vec![acl(
            ResourceType::Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:*",
            "*",
            AclOperation::All,
            AclPermission::Deny,
        )],
    );
    assert!(can(
        &s,
        &KafkaPrincipal::user("admin"),
        AclOperation::Alter,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
    assert!(!can(
        &s,
        &alice(),
        AclOperation::Alter,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
}

#[test]
fn settings_errors_name_the_key() {
    assert!(!AuthorizerSettings::parse(None, None, None).unwrap().enabled);
    assert!(
        !AuthorizerSettings::parse(Some(""), None, None)
            .unwrap()
            .enabled
    );
    let err =
        AuthorizerSettings::parse(Some("kafka.security.authorizer.AclAuthorizer"), None, None)
            .unwrap_err();
    assert!(err.starts_with("authorizer.class.name"), "{err}");
    let err = AuthorizerSettings::parse(None, Some("admin"), None).unwrap_err();
    assert!(err.starts_with("super.users"), "{err}");
    let err = AuthorizerSettings::parse(None, None, Some("yes")).unwrap_err();
    assert!(err.starts_with("allow.everyone.if.no.acl.found"), "{err}");
    assert!(
        AuthorizerSettings::parse(None, None, Some("TRUE"))
            .unwrap()
            .allow_everyone_if_no_acl_found
    );
}

#[test]
fn validation_of_new_acls() {
    let good = topic_allow("t", PatternType::Literal, "User:alice", AclOperation::Read);
    assert_eq!(good.validate(), None);
    let mut bad = good.clone();
    bad.pattern_type = PatternType::Match;
    assert_eq!(bad.validate().as_deref(), Some("Invalid patternType MATCH"));
    let mut bad = good.clone();
    bad.operation = AclOperation::Any;
    assert!(bad.validate().is_some());
    let mut bad = good.clone();
    bad.resource_name.clear();
    assert!(bad.validate().is_some());
    let mut bad = good.clone();
    bad.principal = "alice".into();
    assert!(bad.validate().is_some());
    let mut bad = good;
    bad.resource_type = ResourceType::Cluster;
    assert!(bad.validate().unwrap().contains("kafka-cluster"));
}

#[test]
fn binding_filters() {
    let s = set(
        &AuthorizerSettings::default(),
        vec![
            topic_allow(
                "foo",
                PatternType::Literal,
                "User:alice",
                AclOperation::Read,
            ),
            topic_allow("fo", PatternType::Prefixed, "User:bob", AclOperation::Write),
            topic_allow(
                "*",
                PatternType::Literal,
                "User:alice",
                AclOperation::Describe,
            ),
            topic_allow(
                "bar",
                PatternType::Literal,
                "User:alice",
                AclOperation::Read,
            ),
        ],
    );
    let any = AclBindingFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission: AclPermission::Any,
    };
    assert_eq!(s.matching(&any).count(), 4);
    let names = |f: &AclBindingFilter| {
        let mut v: Vec<String> = s
            .matching(f)
            .map(|(_, a)| a.resource_name.clone())
            .collect();
        v.sort();
        v
    };
    let m = AclBindingFilter {
        resource_name: Some("foo".into()),
        pattern_type: PatternType::Match,
        ..any.clone()
    };
    assert_eq!(names(&m), vec!["*", "fo", "foo"]);
    let lit = AclBindingFilter {
        resource_name: Some("foo".into()),
        pattern_type: PatternType::Literal,
        ..any.clone()
    };
    assert_eq!(names(&lit), vec!["foo"]);
    let anyname = AclBindingFilter {
        resource_name: Some("fo".into()),
        ..any.clone()
    };
    assert_eq!(names(&anyname), vec!["fo"]);
    let by_principal = AclBindingFilter {
        principal: Some("User:bob".into()),
        ..any.clone()
    };
    assert_eq!(names(&by_principal), vec!["fo"]);
    let by_op = AclBindingFilter {
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
        ..any
    };
    assert_eq!(names(&by_op), vec!["bar", "foo"]);
}

#[test]
fn wire_codes_round_trip() {
    for code in 0..20 {
        if let Some(op) = AclOperation::from_code(code) {
            assert_eq!(op.code(), code);
        }
        if let Some(rt) = ResourceType::from_code(code) {
            assert_eq!(rt.code(), code);
        }
    }
    assert_eq!(AclOperation::from_code(0), None);
    assert_eq!(
        AclOperation::from_code(12),
        Some(AclOperation::IdempotentWrite)
    );
    assert_eq!(
        ResourceType::from_code(5),
        Some(ResourceType::TransactionalId)
    );
    assert_eq!(PatternType::from_code(4), Some(PatternType::Prefixed));
    assert_eq!(AclPermission::from_code(2), Some(AclPermission::Deny));
}

#[test]
fn authorize_by_resource_type_as_kafkas_default() {
    let by_type = |s: &AclSet| {
        s.authorize_by_resource_type(&alice(), local(), AclOperation::Write, ResourceType::Topic)
            == Decision::Allowed
    };
    let strict = AuthorizerSettings::default();
    assert!(!by_type(&set(&strict, vec![])));
    // Any literal ALLOW of WRITE (or ALL) on some topic is enough.
    let one = topic_allow(
        "orders",
        PatternType::Literal,
        "User:alice",
        AclOperation::Write,
    );
    assert!(by_type(&set(&strict, vec![one.clone()])));
    let all = topic_allow("x-", PatternType::Prefixed, "User:*", AclOperation::All);
    assert!(by_type(&set(&strict, vec![all])));
    // READ does not count for WRITE.
    let read = topic_allow(
        "orders",
        PatternType::Literal,
        "User:alice",
        AclOperation::Read,
    );
    assert!(!by_type(&set(&strict, vec![read])));
    // A DENY of the same literal, or of a prefix of it, takes the ALLOW back.
    let mut deny = one.clone();
    deny.permission = AclPermission::Deny;
    assert!(!by_type(&set(&strict, vec![one.clone(), deny])));
    let mut deny_prefix = topic_allow(
        "ord",
        PatternType::Prefixed,
        "User:alice",
        AclOperation::Write,
    );
    deny_prefix.permission = AclPermission::Deny;
    assert!(!by_type(&set(
        &strict,
        vec![one.clone(), deny_prefix.clone()]
    )));
    let other = topic_allow(
        "logs",
        PatternType::Literal,
        "User:alice",
        AclOperation::Write,
    );
    assert!(by_type(&set(&strict, vec![one, deny_prefix, other])));
}

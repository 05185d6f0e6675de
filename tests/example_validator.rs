//! The validator example's policy on crafted validation requests: what it
//! accepts, what it rejects and how it words the rejection (upstream's
//! default validator's wording).

use nri::api::security_profile::ProfileType;
use nri::api::{
    Container, ContainerAdjustment, Field, OwningPlugins, PodSandbox, SecurityProfile,
    ValidateContainerAdjustmentRequest,
};
use protobuf::MessageField;

#[allow(dead_code)]
#[path = "../examples/validator/plugin.rs"]
mod validator;

use validator::{Policy, REQUIRED_PLUGINS_ANNOTATION};

/// A request for container `ctr` of pod `pod`, adjusted, consulted by
/// `plugins` (full names).
fn request(plugins: &[&str], owners: OwningPlugins) -> ValidateContainerAdjustmentRequest {
    let mut req = ValidateContainerAdjustmentRequest {
        pod: MessageField::some(PodSandbox {
            id: "pod".into(),
            name: "web".into(),
            ..Default::default()
        }),
        container: MessageField::some(Container {
            id: "ctr".into(),
            name: "nginx".into(),
            ..Default::default()
        }),
        adjust: MessageField::some(ContainerAdjustment::new()),
        owners: MessageField::some(owners),
        ..Default::default()
    };
    for p in plugins {
        let (idx, name) = p.split_once('-').unwrap();
        req.add_plugin(name, idx);
    }
    req
}

fn policy(yaml: &str) -> Policy {
    Policy::parse(yaml).unwrap()
}

#[test]
fn an_empty_policy_accepts_everything() {
    let mut owners = OwningPlugins::new();
    owners
        .owners_for_mut("ctr")
        .accumulate_simple(Field::OciHooks, "10-a");
    owners
        .claim_compound("ctr", Field::Namespace, "network", "10-a")
        .unwrap();
    assert_eq!(policy("").check(&request(&["10-a"], owners)), Ok(()));
}

#[test]
fn hooks_are_rejected_naming_the_injectors_unless_allowed() {
    let mut owners = OwningPlugins::new();
    owners
        .owners_for_mut("ctr")
        .accumulate_simple(Field::OciHooks, "10-a");
    let req = request(&["10-a"], owners.clone());
    let strict = policy("rejectOCIHookAdjustment: true");
    assert_eq!(
        strict.check(&req),
        Err(r#"validation error: plugin "10-a" attempted restricted OCI hook injection"#.into())
    );
    owners
        .owners_for_mut("ctr")
        .accumulate_simple(Field::OciHooks, "20-b");
    assert_eq!(
        strict.check(&request(&["10-a", "20-b"], owners.clone())),
        Err(
            r#"validation error: plugins "10-a,20-b" attempted restricted OCI hook injection"#
                .into()
        )
    );
    let allowing = policy("rejectOCIHookAdjustment: true\nallowedPlugins: [10-a]");
    assert_eq!(
        allowing.check(&request(&["10-a", "20-b"], owners)),
        Err(r#"validation error: plugin "20-b" attempted restricted OCI hook injection"#.into())
    );
}

#[test]
fn seccomp_changes_are_judged_by_the_containers_profile() {
    let mut owners = OwningPlugins::new();
    owners
        .claim_simple("ctr", Field::SeccompPolicy, "30-sec")
        .unwrap();
    let p =
        policy("rejectRuntimeDefaultSeccompAdjustment: true\nrejectCustomSeccompAdjustment: true");
    let with_profile = |t: Option<ProfileType>| {
        let mut req = request(&["30-sec"], owners.clone());
        if let Some(t) = t {
            req.container
                .mut_or_insert_default()
                .linux
                .mut_or_insert_default()
                .seccomp_profile = MessageField::some(SecurityProfile {
                profile_type: t.into(),
                ..Default::default()
            });
        }
        p.check(&req)
    };
    assert_eq!(with_profile(None), Ok(()));
    assert_eq!(with_profile(Some(ProfileType::UNCONFINED)), Ok(()));
    assert_eq!(
        with_profile(Some(ProfileType::RUNTIME_DEFAULT)),
        Err("validation error: plugin 30-sec attempted restricted runtime default seccomp policy adjustment".into())
    );
    assert_eq!(
        with_profile(Some(ProfileType::LOCALHOST)),
        Err("validation error: plugin 30-sec attempted restricted  custom seccomp policy adjustment".into())
    );
}

#[test]
fn namespace_and_sysctl_changes_name_plugin_and_key() {
    let mut owners = OwningPlugins::new();
    owners
        .claim_compound("ctr", Field::Namespace, "network", "10-net")
        .unwrap();
    owners
        .claim_compound("ctr", Field::Sysctl, "net.core.somaxconn", "20-tune")
        .unwrap();
    let mut req = request(&["10-net", "20-tune"], owners);
    req.adjust
        .mut_or_insert_default()
        .set_linux_sysctl("net.core.somaxconn", "1024");
    assert_eq!(
        policy("rejectNamespaceAdjustment: true").check(&req),
        Err(r#"validation error: attempted restricted namespace adjustment by plugin(s) "10-net" (namespace "network")"#.into())
    );
    assert_eq!(
        policy("rejectSysctlAdjustment: true").check(&req),
        Err("validation error: attempted restricted sysctl adjustment by plugin(s) 20-tune".into())
    );
    assert_eq!(
        policy("rejectSysctlAdjustment: true\nallowedPlugins: [20-tune]").check(&req),
        Ok(())
    );
}

#[test]
fn required_plugins_come_from_the_policy_and_the_pods_annotations() {
    let p =
        policy("requiredPlugins: [device-injector]\ntolerateMissingPluginsAnnotation: tolerate");
    let ok = request(&["10-device-injector"], OwningPlugins::new());
    assert_eq!(p.check(&ok), Ok(()));
    let missing = request(&["20-other"], OwningPlugins::new());
    assert_eq!(
        p.check(&missing),
        Err(r#"validation error: required plugin "device-injector" not present"#.into())
    );

    // The pod asks for more, for one container; full names work too.
    let mut req = request(&["10-device-injector"], OwningPlugins::new());
    req.pod.mut_or_insert_default().annotations.insert(
        format!("{REQUIRED_PLUGINS_ANNOTATION}/container.nginx"),
        "[30-ulimit-adjuster, hook-injector]".into(),
    );
    assert_eq!(
        p.check(&req),
        Err(
            r#"validation error: required plugins "30-ulimit-adjuster,hook-injector" not present"#
                .into()
        )
    );

    // The toleration annotation lets it pass, and must be a boolean.
    req.pod
        .mut_or_insert_default()
        .annotations
        .insert("tolerate/pod".into(), "true".into());
    assert_eq!(p.check(&req), Ok(()));
    req.pod
        .mut_or_insert_default()
        .annotations
        .insert("tolerate/pod".into(), "maybe".into());
    assert!(p.check(&req).unwrap_err().contains("not a boolean"));
}

#[test]
fn a_malformed_policy_is_refused_with_the_key_named() {
    let err = Policy::parse("rejectOCIHookAdjustment: sometimes").unwrap_err();
    assert!(err.contains("rejectOCIHookAdjustment"), "{err}");
}

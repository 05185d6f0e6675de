//! The rdt example's tests (through `nri::runtime`: resctrl is not needed
//! to see the adjustment a runtime would get).

use super::rdt::{self, Rdt};
use super::*;
use nri::api::{fixtures, OptionalExt};

fn key(field: &str, ctr: &str) -> String {
    format!("{field}.rdt.noderesource.dev/container.{ctr}")
}

#[test]
fn rdt_sets_each_annotated_field_of_its_container() {
    let runtime = Runtime::new();
    let p = connect(&runtime, Rdt, "rdt", "10");
    let pod = fixtures::pod("web")
        .annotation(&key("closid", "c0"), "gold")
        .annotation(&key("schemata", "c0"), "L3:0=f,MB:0=50")
        .annotation(&key("enablemonitoring", "c0"), "T")
        .annotation(&key("unknown", "c0"), "x")
        .annotation(&key("closid", "c1"), "silver")
        .annotation(&key("schemata", "c2"), "")
        .build();

    let reply = p
        .create_container(&pod, &fixtures::container(&pod, "c0").build())
        .unwrap();
    let rdt = &reply.adjust.linux.rdt;
    assert_eq!(rdt.clos_id.value().as_deref(), Some("gold"));
    assert_eq!(rdt.schemata.value, ["L3:0=f", "MB:0=50"]);
    assert_eq!(rdt.enable_monitoring.value(), Some(true));
    assert!(!rdt.remove);

    let reply = p
        .create_container(&pod, &fixtures::container(&pod, "c1").build())
        .unwrap();
    let rdt = &reply.adjust.linux.rdt;
    assert_eq!(rdt.clos_id.value().as_deref(), Some("silver"));
    assert!(rdt.schemata.is_none() && rdt.enable_monitoring.is_none());

    // An empty schemata is one empty line, as strings.Split makes it.
    let reply = p
        .create_container(&pod, &fixtures::container(&pod, "c2").build())
        .unwrap();
    assert_eq!(reply.adjust.linux.rdt.schemata.value, [""]);

    // No annotation for it: no RDT adjustment at all.
    let reply = p
        .create_container(&pod, &fixtures::container(&pod, "c3").build())
        .unwrap();
    assert!(reply.adjust.linux.is_none());
}

#[test]
fn rdt_refuses_a_monitoring_value_go_does_not_parse() {
    let runtime = Runtime::new();
    let p = connect(&runtime, Rdt, "rdt", "10");
    for (value, quoted) in [
        ("yes", "\"yes\""),
        ("", "\"\""),
        ("tRUE", "\"tRUE\""),
        ("on\n", "\"on\\n\""),
        ("\u{a0}1", "\"\\u00a01\""),
        ("é", "\"é\""),
    ] {
        let pod = fixtures::pod("web")
            .annotation(&key("closid", "c0"), "gold")
            .annotation(&key("enablemonitoring", "c0"), value)
            .build();
        let err = p
            .create_container(&pod, &fixtures::container(&pod, "c0").build())
            .unwrap_err();
        assert_eq!(
            status_message(err),
            format!("strconv.ParseBool: parsing {quoted}: invalid syntax")
        );
    }
    for (value, want) in [("1", true), ("False", false), ("f", false), ("TRUE", true)] {
        assert_eq!(rdt::parse_bool(value), Ok(want), "{value}");
    }
}

#[test]
fn rdt_log_lines_carry_logrus_fields() {
    let pod = fixtures::pod("web").namespace("shop").build();
    let ctr = fixtures::container(&pod, "c0").build();
    let fields = rdt::Fields::new(&pod, &ctr);
    assert_eq!(
        fields.line("Adjust schemata", &[("schemata", "[L3:0=f MB:0=50]")]),
        "Adjust schemata container=c0 namespace=shop pod=web schemata=\"[L3:0=f MB:0=50]\""
    );
    assert_eq!(
        fields.line("Adjust closid", &[("closid", "gold")]),
        "Adjust closid closid=gold container=c0 namespace=shop pod=web"
    );
}

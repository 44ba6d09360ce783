//! ClusterIP and NodePort allocation for Services, done by the Service registry when an
//! object is created or updated (as upstream's service REST storage does; no controller).
//!
//! Upstream keeps allocation bitmaps in etcd. A BeeMesh node has no shared bitmap: what
//! is in use is read from the Services this node's replica holds, so releasing an
//! address is implicit in deleting its Service. Nodes of a mesh allocate independently:
//! the first candidate comes from a stable hash of the Service's `namespace/name` and is
//! probed forward past addresses in use. On one node this never collides (every Service
//! the node wrote is in its replica). Across nodes two Services collide only when they
//! are created on different nodes before either has replicated *and* their probe walks
//! meet — rare with 2^20 addresses; a later reconcile can reassign one.
//!
//! Like upstream, dynamic allocation prefers the upper part of each range and leaves a
//! small static band at the bottom (10.96.0.0–10.96.0.255, 30000–30085) for explicitly
//! requested values such as the `kubernetes` Service's 10.96.0.1.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause};
use crate::validation::field;

/// The service IP range (`--service-cluster-ip-range`).
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
const NETWORK: u32 = 0x0A60_0000; // 10.96.0.0
const RANGE_SIZE: u32 = 1 << 20; // a /12
/// Upstream's static band: min(max(16, size/16), 256) addresses.
const IP_STATIC_BAND: u32 = 256;

/// The NodePort range (`--service-node-port-range`).
pub const NODE_PORT_FIRST: u16 = 30000;
pub const NODE_PORT_LAST: u16 = 32767;
/// Upstream's static band: min(max(16, size/32), 128) ports.
const NODE_PORT_STATIC_BAND: u16 = 86;

/// The first address of the service range: the `kubernetes` Service's ClusterIP.
pub fn kubernetes_service_ip() -> Ipv4Addr {
    Ipv4Addr::from(NETWORK + 1)
}

/// Addresses and ports taken by the Services a node knows.
#[derive(Debug, Default, Clone)]
pub struct InUse {
    ips: HashSet<Ipv4Addr>,
    node_ports: HashSet<u16>,
}

impl InUse {
    /// Collects what `services` use (their cluster IPs, node ports and health-check
    /// node ports).
    pub fn from_services<'a>(services: impl IntoIterator<Item = &'a Value>) -> InUse {
        let mut in_use = InUse::default();
        for svc in services {
            let spec = svc.get("spec").unwrap_or(&Value::Null);
            let ips = spec
                .get("clusterIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(spec.get("clusterIP"));
            for ip in ips.filter_map(Value::as_str) {
                if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                    in_use.ips.insert(ip);
                }
            }
            for port in ports(spec) {
                if let Some(p) = node_port_of(port) {
                    in_use.node_ports.insert(p);
                }
            }
            if let Some(p) = spec
                .get("healthCheckNodePort")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
            {
                in_use.node_ports.insert(p);
            }
        }
        in_use
    }
}

fn ports(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn node_port_of(port: &Value) -> Option<u16> {
    port.get("nodePort")
        .and_then(Value::as_i64)
        .filter(|p| *p != 0)
        .and_then(|p| u16::try_from(p).ok())
}

/// FNV-1a: stable across builds and nodes (std's hasher is not).
fn stable_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn in_ip_range(ip: Ipv4Addr) -> bool {
    let n = u32::from(ip);
    // The network and broadcast addresses are not allocatable.
    n > NETWORK && n < NETWORK + RANGE_SIZE - 1
}

fn in_node_port_range(port: i64) -> bool {
    (i64::from(NODE_PORT_FIRST)..=i64::from(NODE_PORT_LAST)).contains(&port)
}

/// Probes `[first, first + count)` from the offset `start`, wrapping, for a free value.
fn probe<T: Copy>(
    count: u64,
    start: u64,
    value_at: impl Fn(u64) -> T,
    taken: impl Fn(T) -> bool,
) -> Option<T> {
    (0..count)
        .map(|k| value_at((start + k) % count))
        .find(|v| !taken(*v))
}

fn next_ip(key: &str, in_use: &InUse) -> Option<Ipv4Addr> {
    let hash = stable_hash(key);
    let taken = |ip: Ipv4Addr| in_use.ips.contains(&ip);
    // Dynamic band first (upper part of the range), then the static band.
    let dynamic = u64::from(RANGE_SIZE - 1 - IP_STATIC_BAND);
    let at_dynamic = |o: u64| Ipv4Addr::from(NETWORK + IP_STATIC_BAND + o as u32);
    probe(dynamic, hash % dynamic, at_dynamic, taken).or_else(|| {
        let statics = u64::from(IP_STATIC_BAND - 1);
        let at_static = |o: u64| Ipv4Addr::from(NETWORK + 1 + o as u32);
        probe(statics, hash % statics, at_static, taken)
    })
}

fn next_node_port(key: &str, taken: &HashSet<u16>) -> Option<u16> {
    let hash = stable_hash(key);
    let is_taken = |p: u16| taken.contains(&p);
    let dynamic_first = NODE_PORT_FIRST + NODE_PORT_STATIC_BAND;
    let dynamic = u64::from(NODE_PORT_LAST - dynamic_first + 1);
    let at_dynamic = |o: u64| dynamic_first + o as u16;
    probe(dynamic, hash % dynamic, at_dynamic, is_taken).or_else(|| {
        let statics = u64::from(NODE_PORT_STATIC_BAND);
        probe(
            statics,
            hash % statics,
            |o| NODE_PORT_FIRST + o as u16,
            is_taken,
        )
    })
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| field::go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn service_type(spec: &Map<String, Value>) -> &str {
    spec.get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn needs_cluster_ip(spec: &Map<String, Value>) -> bool {
    service_type(spec) != "ExternalName"
}

fn needs_node_ports(spec: &Map<String, Value>) -> bool {
    matches!(service_type(spec), "NodePort" | "LoadBalancer")
}

fn needs_health_check_node_port(spec: &Map<String, Value>) -> bool {
    service_type(spec) == "LoadBalancer"
        && spec.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local")
}

/// Upstream's `patchAllocatedValues`: an update that leaves out what was allocated
/// (a `kubectl replace` of a manifest without clusterIP or nodePorts) keeps it.
fn keep_allocated_values(spec: &mut Map<String, Value>, old: &Map<String, Value>) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(ip) = old.get("clusterIP")
        {
            spec.insert("clusterIP".into(), ip.clone());
        }
        if spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
            && let Some(ips) = old.get("clusterIPs")
        {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    if needs_node_ports(old) && needs_node_ports(spec) {
        let old_ports: Vec<&Value> = old
            .get("ports")
            .and_then(Value::as_array)
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        let used_by_old: HashSet<u16> = old_ports.iter().filter_map(|p| node_port_of(p)).collect();
        let used_by_new: HashSet<u16> = spec
            .get("ports")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(node_port_of).collect())
            .unwrap_or_default();
        let used: HashSet<u16> = used_by_old.intersection(&used_by_new).copied().collect();
        let by_name: HashMap<String, u16> = old_ports
            .iter()
            .filter_map(|p| {
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                node_port_of(p).map(|np| (name.to_string(), np))
            })
            .collect();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut() {
                if node_port_of(port).is_some() {
                    continue;
                }
                let name = port.get("name").and_then(Value::as_str).unwrap_or_default();
                if let Some(np) = by_name.get(name).filter(|np| !used.contains(np))
                    && let Some(p) = port.as_object_mut()
                {
                    p.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
    if needs_health_check_node_port(old)
        && needs_health_check_node_port(spec)
        && spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .is_none_or(|p| p == 0)
        && let Some(p) = old.get("healthCheckNodePort")
    {
        spec.insert("healthCheckNodePort".into(), p.clone());
    }
}

/// Fills `spec.clusterIP`/`clusterIPs` and the node ports a Service needs and checks the
/// explicitly requested ones against the range and against `in_use` (the other
/// Services; never the one being written). `old` is the stored object on update.
/// Errors are upstream's 422s (`spec.clusterIPs: Invalid value: []string{"10.96.0.10"}:
/// failed to allocate IP 10.96.0.10: provided IP is already allocated`).
pub fn allocate(service: &mut Value, in_use: &InUse, old: Option<&Value>) -> Result<(), ApiError> {
    let name = service
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = service
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(old_spec) = old.and_then(|o| o.get("spec")).and_then(Value::as_object) {
        keep_allocated_values(spec, old_spec);
    }
    let key = format!("{namespace}/{name}");
    let mut causes = Vec::new();
    if needs_cluster_ip(spec) {
        allocate_cluster_ip(spec, &key, in_use, &mut causes)?;
    }
    allocate_node_ports(spec, &key, in_use, &mut causes)?;
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("", "Service", &name, causes))
    }
}

fn allocate_cluster_ip(
    spec: &mut Map<String, Value>,
    key: &str,
    in_use: &InUse,
    causes: &mut Vec<Cause>,
) -> Result<(), ApiError> {
    let mut ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let single = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if ips.is_empty() && !single.is_empty() {
        ips.push(single.clone());
    }
    match ips.first().map(String::as_str) {
        Some("None") => {
            spec.insert("clusterIP".into(), json!("None"));
            spec.insert("clusterIPs".into(), json!(["None"]));
            return Ok(());
        }
        Some(requested) if !requested.is_empty() => {
            let requested = requested.to_string();
            match requested.parse::<IpAddr>() {
                Err(_) => causes.push(field::invalid_str(
                    "spec.clusterIPs[0]",
                    &requested,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )),
                Ok(IpAddr::V6(_)) => causes.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs[0]",
                    format!(
                        "Invalid value: {}: IPv6 is not configured on this cluster",
                        go_string_slice(&ips)
                    ),
                )),
                Ok(IpAddr::V4(ip)) => {
                    let problem = if !in_ip_range(ip) {
                        Some(format!(
                            "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                        ))
                    } else if in_use.ips.contains(&ip) {
                        Some("provided IP is already allocated".to_string())
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        causes.push(Cause::new(
                            "FieldValueInvalid",
                            "spec.clusterIPs",
                            format!(
                                "Invalid value: {}: failed to allocate IP {ip}: {problem}",
                                go_string_slice(&ips)
                            ),
                        ));
                    }
                }
            }
            spec.insert("clusterIP".into(), json!(requested));
            spec.insert("clusterIPs".into(), json!(ips));
        }
        _ => {
            let ip = next_ip(key, in_use).ok_or_else(|| {
                ApiError::internal("failed to allocate a serviceIP: range is full")
            })?;
            spec.insert("clusterIP".into(), json!(ip.to_string()));
            spec.insert("clusterIPs".into(), json!([ip.to_string()]));
        }
    }
    Ok(())
}

fn allocate_node_ports(
    spec: &mut Map<String, Value>,
    key: &str,
    in_use: &InUse,
    causes: &mut Vec<Cause>,
) -> Result<(), ApiError> {
    let kind = service_type(spec).to_string();
    let wants_node_ports = needs_node_ports(spec);
    // A LoadBalancer may opt out of node ports (`allocateLoadBalancerNodePorts: false`);
    // explicitly requested ones are still honoured.
    let allocate_unset = wants_node_ports
        && !(kind == "LoadBalancer"
            && spec.get("allocateLoadBalancerNodePorts") == Some(&Value::Bool(false)));
    let mut taken: HashSet<u16> = in_use.node_ports.clone();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        // Ports with the same number (TCP and UDP of one port) share their node port.
        let mut by_port: HashMap<i64, u16> = HashMap::new();
        for (i, port) in ports.iter_mut().enumerate() {
            let Some(port) = port.as_object_mut() else {
                continue;
            };
            let path = format!("spec.ports[{i}].nodePort");
            let requested = port
                .get("nodePort")
                .and_then(Value::as_i64)
                .filter(|p| *p != 0);
            if !wants_node_ports {
                if let Some(p) = requested {
                    causes.push(field::forbidden(
                        &path,
                        &format!("may not be used when `type` is '{kind}'"),
                    ));
                    let _ = p;
                }
                continue;
            }
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            match (requested, by_port.get(&number).copied()) {
                (None, Some(shared)) => {
                    port.insert("nodePort".into(), json!(shared));
                }
                (Some(p), Some(shared)) if p == i64::from(shared) => {}
                (Some(p), _) => {
                    let problem = if !in_node_port_range(p) {
                        Some(format!(
                            "provided port is not in the valid range. The range of valid ports is {NODE_PORT_FIRST}-{NODE_PORT_LAST}"
                        ))
                    } else if taken.contains(&(p as u16)) {
                        Some("provided port is already allocated".to_string())
                    } else {
                        None
                    };
                    match problem {
                        Some(problem) => {
                            causes.push(field::invalid(&path, &json!(p), &problem));
                        }
                        None => {
                            taken.insert(p as u16);
                            by_port.entry(number).or_insert(p as u16);
                        }
                    }
                }
                (None, None) if allocate_unset => {
                    let np = next_node_port(key, &taken).ok_or_else(|| {
                        ApiError::internal("failed to allocate a nodePort: range is full")
                    })?;
                    taken.insert(np);
                    by_port.insert(number, np);
                    port.insert("nodePort".into(), json!(np));
                }
                (None, None) => {}
            }
        }
    }
    if needs_health_check_node_port(spec) {
        match spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .filter(|p| *p != 0)
        {
            Some(p) if in_node_port_range(p) && !taken.contains(&(p as u16)) => {}
            Some(p) => {
                return Err(ApiError::internal(format!(
                    "failed to allocate requested HealthCheck NodePort {p}: provided port is already allocated"
                )));
            }
            None => {
                let np = next_node_port(key, &taken).ok_or_else(|| {
                    ApiError::internal("failed to allocate a HealthCheck NodePort: range is full")
                })?;
                spec.insert("healthCheckNodePort".into(), json!(np));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn cluster_ip(s: &Value) -> Ipv4Addr {
        s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap()
    }

    #[test]
    fn cluster_ip_from_the_dynamic_band_and_stable_per_name() {
        let mut a = svc("api", json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        allocate(&mut a, &InUse::default(), None).unwrap();
        let ip = cluster_ip(&a);
        assert!(
            in_ip_range(ip) && u32::from(ip) >= NETWORK + IP_STATIC_BAND,
            "{ip}"
        );
        assert_eq!(a["spec"]["clusterIPs"], json!([ip.to_string()]));
        // Another node computes the same first candidate for the same name.
        let mut again = svc("api", json!({"type": "ClusterIP"}));
        allocate(&mut again, &InUse::default(), None).unwrap();
        assert_eq!(cluster_ip(&again), ip);
        // Taken: the next free address.
        let in_use = InUse::from_services([&a]);
        let mut b = svc("api", json!({"type": "ClusterIP"}));
        allocate(&mut b, &in_use, None).unwrap();
        assert_ne!(cluster_ip(&b), ip);
    }

    #[test]
    fn headless_and_external_name_get_no_address() {
        let mut h = svc("h", json!({"clusterIP": "None"}));
        allocate(&mut h, &InUse::default(), None).unwrap();
        assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
        let mut e = svc(
            "e",
            json!({"type": "ExternalName", "externalName": "x.example"}),
        );
        allocate(&mut e, &InUse::default(), None).unwrap();
        assert!(e["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn requested_addresses_are_checked() {
        let holder = svc("dns", json!({"clusterIP": "10.96.0.10"}));
        let in_use = InUse::from_services([&holder]);
        let mut dup = svc("other", json!({"clusterIP": "10.96.0.10"}));
        let err = allocate(&mut dup, &in_use, None).unwrap_err();
        assert_eq!(err.code(), 422);
        let status = err.status();
        assert_eq!(
            status["message"],
            "Service \"other\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"
        );
        let mut outside = svc("o", json!({"clusterIP": "192.168.0.1"}));
        let err = allocate(&mut outside, &in_use, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("The range of valid IPs is 10.96.0.0/12"),
            "{err}"
        );
        let mut bad = svc("b", json!({"clusterIP": "not-an-ip"}));
        assert!(allocate(&mut bad, &in_use, None).is_err());
        let mut ok = svc("k", json!({"clusterIP": "10.96.0.1"}));
        allocate(&mut ok, &in_use, None).unwrap();
        assert_eq!(ok["spec"]["clusterIPs"], json!(["10.96.0.1"]));
    }

    #[test]
    fn node_ports_are_allocated_shared_and_checked() {
        let mut s = svc(
            "edge",
            json!({"type": "NodePort", "ports": [
                {"name": "tcp", "port": 53, "protocol": "TCP"},
                {"name": "udp", "port": 53, "protocol": "UDP"},
                {"name": "web", "port": 80}]}),
        );
        allocate(&mut s, &InUse::default(), None).unwrap();
        let np = |i: usize| s["spec"]["ports"][i]["nodePort"].as_i64().unwrap();
        assert!(in_node_port_range(np(0)));
        assert_eq!(np(0), np(1), "one port number, one node port");
        assert_ne!(np(0), np(2));
        let in_use = InUse::from_services([&s]);
        let mut clash = svc(
            "clash",
            json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": np(2)}]}),
        );
        let err = allocate(&mut clash, &in_use, None).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "spec.ports[0].nodePort: Invalid value: {}: provided port is already allocated",
                np(2)
            )),
            "{err}"
        );
        let mut low = svc(
            "low",
            json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 80}]}),
        );
        let err = allocate(&mut low, &in_use, None).unwrap_err();
        assert!(
            err.to_string().contains(
                "provided port is not in the valid range. The range of valid ports is 30000-32767"
            ),
            "{err}"
        );
        let mut cip = svc(
            "cip",
            json!({"type": "ClusterIP", "ports": [{"port": 1, "nodePort": 30001}]}),
        );
        let err = allocate(&mut cip, &in_use, None).unwrap_err();
        assert!(
            err.to_string().contains(
                "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_update_keeps_what_was_allocated() {
        let mut s = svc(
            "edge",
            json!({"type": "NodePort", "ports": [{"name": "web", "port": 80}]}),
        );
        allocate(&mut s, &InUse::default(), None).unwrap();
        let mut replaced = svc(
            "edge",
            json!({"type": "NodePort", "ports": [{"name": "web", "port": 80}]}),
        );
        allocate(&mut replaced, &InUse::default(), Some(&s)).unwrap();
        assert_eq!(replaced["spec"]["clusterIP"], s["spec"]["clusterIP"]);
        assert_eq!(
            replaced["spec"]["ports"][0]["nodePort"],
            s["spec"]["ports"][0]["nodePort"]
        );
    }
}

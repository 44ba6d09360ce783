//! The EndpointSlice controller: for every Service with a selector, discovery.k8s.io/v1
//! EndpointSlices listing the selected pods (address, ready/serving/terminating, nodeName,
//! zone, targetRef) with the Service's ports resolved on them, as upstream's
//! endpointslice-controller does. At most `MAX_ENDPOINTS_PER_SLICE` endpoints a slice;
//! pods whose ports resolve differently go in different slices.
//!
//! Each Service is reconciled by its home node only, on every Service, pod or slice
//! change and every `RESYNC`. A pass writes nothing when the slices already say what the
//! pods say (content is compared, not versions), so passes are idempotent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_translator::deletion::DeleteOptions;
use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::{ApiError, ResourceInfo};
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::service_pods::{
    ResolvedPort, home_services_with_selector, inherited_labels, is_pod_ready, is_terminating,
    list_all, meta, node_zones, pod_ip, pods_for, publish_not_ready, resolved_ports, selected_pods,
    service_selector, should_be_in_endpoints, trigger_time,
};

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice, and this controller's value for it.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The annotation with the time of the change that caused the last write.
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

const RESYNC: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(500);
/// Shortest time between the starts of two passes (batches churn).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What one slice should hold: its ports and endpoints.
#[derive(Debug, Clone, PartialEq)]
struct DesiredSlice {
    ports: Value,
    endpoints: Value,
}

/// Upstream's podToEndpoint: `serving` is readiness (or publishNotReadyAddresses),
/// `ready` additionally requires the pod not to be terminating.
fn endpoint_of(svc: &Value, pod: &Value, ip: &str, zones: &HashMap<String, String>) -> Value {
    let serving = publish_not_ready(svc) || is_pod_ready(pod);
    let terminating = is_terminating(pod);
    let ready = publish_not_ready(svc) || (serving && !terminating);
    let mut ep = json!({
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {
            "kind": "Pod",
            "namespace": meta(pod, "namespace"),
            "name": meta(pod, "name"),
            "uid": meta(pod, "uid"),
        },
    });
    if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
        ep["nodeName"] = json!(node);
        if let Some(zone) = zones.get(node) {
            ep["zone"] = json!(zone);
        }
    }
    // Upstream's ShouldSetHostname: the pod names this Service as its subdomain.
    if let Some(host) = pod.pointer("/spec/hostname").and_then(Value::as_str)
        && !host.is_empty()
        && pod.pointer("/spec/subdomain").and_then(Value::as_str) == meta(svc, "name")
    {
        ep["hostname"] = json!(host);
    }
    ep
}

fn ports_json(ports: &[ResolvedPort]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                let mut v = json!({"name": p.name, "port": p.port, "protocol": p.protocol});
                if let Some(ap) = &p.app_protocol {
                    v["appProtocol"] = json!(ap);
                }
                v
            })
            .collect(),
    )
}

/// The slices a Service should have: endpoints grouped by their resolved port set, in
/// pod-name order, cut into slices of at most `max` endpoints. A Service selecting no
/// pod with an address gets one empty placeholder slice, as upstream's.
fn desired_slices(
    svc: &Value,
    pods: &[&Value],
    zones: &HashMap<String, String>,
    max: usize,
) -> Vec<DesiredSlice> {
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<Value>> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            continue;
        }
        groups
            .entry(resolved_ports(svc, pod))
            .or_default()
            .push(endpoint_of(svc, pod, ip, zones));
    }
    let mut out = Vec::new();
    for (ports, endpoints) in groups {
        for chunk in endpoints.chunks(max.max(1)) {
            out.push(DesiredSlice {
                ports: ports_json(&ports),
                endpoints: Value::Array(chunk.to_vec()),
            });
        }
    }
    if out.is_empty() {
        out.push(DesiredSlice {
            ports: json!([]),
            endpoints: json!([]),
        });
    }
    out
}

/// The labels a managed slice carries: the Service's, then ours.
fn slice_labels(svc: &Value) -> Map<String, Value> {
    let mut labels: Map<String, Value> = inherited_labels(svc).into_iter().collect();
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        json!(meta(svc, "name").unwrap_or_default()),
    );
    labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY));
    labels
}

fn array_or_empty(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Array(a)) => Value::Array(a.clone()),
        _ => json!([]),
    }
}

/// Whether a stored slice already says what `want` and `labels` say.
fn slice_matches(slice: &Value, want: &DesiredSlice, labels: &Map<String, Value>) -> bool {
    slice.get("addressType").and_then(Value::as_str) == Some("IPv4")
        && array_or_empty(slice.get("endpoints")) == want.endpoints
        && array_or_empty(slice.get("ports")) == want.ports
        && slice.pointer("/metadata/labels").and_then(Value::as_object) == Some(labels)
}

fn owner_ref(svc: &Value) -> Value {
    json!([{
        "apiVersion": "v1", "kind": "Service",
        "name": meta(svc, "name"), "uid": meta(svc, "uid"),
        "controller": true, "blockOwnerDeletion": true,
    }])
}

/// The controller; one per node, acting on the Services it is home of.
pub struct EndpointSliceController {
    service: ObjectService,
}

impl EndpointSliceController {
    pub fn new(service: ObjectService) -> Self {
        EndpointSliceController { service }
    }

    fn resource(&self, group: &str, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        let version = "v1";
        self.service.registry.served(group, version, plural)
    }

    /// Runs forever: a pass on start, on every Service, pod or EndpointSlice change, and
    /// every `RESYNC`.
    pub async fn run(self) {
        loop {
            let from = self.service.store.revision();
            let started = Instant::now();
            let wait = match self.reconcile_all().await {
                Ok(false) => RESYNC,
                Ok(true) => SHORT,
                Err(e) => {
                    tracing::warn!(error = %e, "endpointslice reconcile failed");
                    SHORT
                }
            };
            let (Ok(pods), Ok(services), Ok(slices)) = (
                self.resource("", "pods"),
                self.resource("", "services"),
                self.resource("discovery.k8s.io", "endpointslices"),
            ) else {
                return;
            };
            tokio::select! {
                _ = wait_for_change(&self.service, &pods, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &services, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &slices, from, wait, |_| true) => {}
            }
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    /// One pass over every Service with a selector this node is home of; true when a
    /// write failed and another look is due soon.
    pub async fn reconcile_all(&self) -> Result<bool, ApiError> {
        let services_res = self.resource("", "services")?;
        let slices_res = self.resource("discovery.k8s.io", "endpointslices")?;
        let all = list_all(&self.service, &services_res)?;
        let services = home_services_with_selector(&self.service, &services_res, &all);
        if services.is_empty() {
            return Ok(false);
        }
        let pods = pods_for(&self.service, &*self.resource("", "pods")?, &services)?;
        let zones = node_zones(&list_all(&self.service, &*self.resource("", "nodes")?)?);
        let mut managed: HashMap<(String, String), Vec<Value>> = HashMap::new();
        for slice in list_all(&self.service, &slices_res)? {
            let labels = slice.pointer("/metadata/labels");
            let by_us = labels
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .and_then(Value::as_str)
                == Some(MANAGED_BY);
            let svc = labels
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .and_then(Value::as_str);
            if let (true, Some(svc), Some(ns)) = (by_us, svc, meta(&slice, "namespace")) {
                managed
                    .entry((ns.to_string(), svc.to_string()))
                    .or_default()
                    .push(slice);
            }
        }
        let mut soon = false;
        let empty = Vec::new();
        for svc in &services {
            let (Some(ns), Some(name), Some(selector)) = (
                meta(svc, "namespace"),
                meta(svc, "name"),
                service_selector(svc),
            ) else {
                continue;
            };
            let selected = selected_pods(selector, pods.get(ns).unwrap_or(&empty));
            let want = desired_slices(svc, &selected, &zones, MAX_ENDPOINTS_PER_SLICE);
            let have = managed
                .remove(&(ns.to_string(), name.to_string()))
                .unwrap_or_default();
            if let Err(e) = self.sync(&slices_res, svc, want, have).await {
                tracing::debug!(error = %e, namespace = ns, service = name, "endpointslice sync failed");
                soon = true;
            }
        }
        Ok(soon)
    }

    /// Makes a Service's managed slices hold `want`: slices already right are kept,
    /// others rewritten, missing ones created, leftovers deleted.
    async fn sync(
        &self,
        res: &ResourceInfo,
        svc: &Value,
        want: Vec<DesiredSlice>,
        mut have: Vec<Value>,
    ) -> Result<(), ApiError> {
        let ns = meta(svc, "namespace").unwrap_or_default().to_string();
        let name = meta(svc, "name").unwrap_or_default().to_string();
        let labels = slice_labels(svc);
        let mut pending = Vec::new();
        for slice in want {
            match have.iter().position(|h| slice_matches(h, &slice, &labels)) {
                Some(i) => {
                    have.swap_remove(i);
                }
                None => pending.push(slice),
            }
        }
        let opts = WriteOptions::default();
        let when = trigger_time();
        for slice in pending {
            if let Some(stale) = have.pop() {
                let stale_name = meta(&stale, "name").unwrap_or_default().to_string();
                let labels = labels.clone();
                let when = when.clone();
                self.service
                    .update(res, Some(&ns), &stale_name, Part::Main, &opts, move |cur| {
                        let mut new = cur.clone();
                        new["addressType"] = json!("IPv4");
                        new["endpoints"] = slice.endpoints.clone();
                        new["ports"] = slice.ports.clone();
                        new["metadata"]["labels"] = Value::Object(labels.clone());
                        new["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] = json!(when);
                        Ok(new)
                    })
                    .await?;
            } else {
                let obj = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {TRIGGER_TIME_ANNOTATION: when},
                        "ownerReferences": owner_ref(svc),
                    },
                    "addressType": "IPv4",
                    "endpoints": slice.endpoints,
                    "ports": slice.ports,
                });
                self.service.create(res, Some(&ns), obj, &opts).await?;
            }
        }
        for stale in have {
            let Some(stale_name) = meta(&stale, "name") else {
                continue;
            };
            match self
                .service
                .delete_with(res, Some(&ns), stale_name, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(publish: bool) -> Value {
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "s1", "labels": {"app": "web"}},
               "spec": {"selector": {"app": "web"}, "publishNotReadyAddresses": publish,
                        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}})
    }

    fn pod(name: &str, ip: &str, ready: bool, port: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"), "labels": {"app": "web"}},
               "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
               "status": {"phase": "Running", "podIP": ip,
                          "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn endpoints_carry_conditions_node_zone_and_target_ref() {
        let zones = HashMap::from([("n1".to_string(), "z1".to_string())]);
        let ready = pod("a", "10.0.0.1", true, 8080);
        let unready = pod("b", "10.0.0.2", false, 8080);
        let mut going = pod("c", "10.0.0.3", true, 8080);
        going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let pods = [&ready, &unready, &going];
        let want = desired_slices(&svc(false), &pods, &zones, 100);
        assert_eq!(want.len(), 1);
        assert_eq!(
            want[0].ports,
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        let eps = want[0].endpoints.as_array().unwrap();
        assert_eq!(eps.len(), 3);
        assert_eq!(eps[0]["addresses"], json!(["10.0.0.1"]));
        assert_eq!(
            eps[0]["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
        assert_eq!(eps[0]["zone"], "z1");
        assert_eq!(eps[0]["nodeName"], "n1");
        assert_eq!(
            eps[0]["targetRef"],
            json!({"kind": "Pod", "namespace": "ns", "name": "a", "uid": "u-a"})
        );
        assert_eq!(
            eps[1]["conditions"],
            json!({"ready": false, "serving": false, "terminating": false})
        );
        assert_eq!(
            eps[2]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        // publishNotReadyAddresses makes every endpoint ready.
        let published = desired_slices(&svc(true), &pods, &zones, 100);
        assert!(
            published[0]
                .endpoints
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["conditions"]["ready"] == true)
        );
    }

    #[test]
    fn slices_split_by_port_and_size_with_a_placeholder_when_empty() {
        let zones = HashMap::new();
        let pods: Vec<Value> = (0..5)
            .map(|i| pod(&format!("p{i}"), &format!("10.0.0.{i}"), true, 8080))
            .collect();
        let other = pod("q", "10.0.1.1", true, 9090);
        let mut refs: Vec<&Value> = pods.iter().collect();
        refs.push(&other);
        let want = desired_slices(&svc(false), &refs, &zones, 2);
        // 5 pods on 8080 in slices of 2 → 3 slices, 1 pod on 9090 → 1 slice.
        assert_eq!(want.len(), 4);
        assert_eq!(
            want.iter().filter(|s| s.ports[0]["port"] == 9090).count(),
            1
        );
        let empty = desired_slices(&svc(false), &[], &zones, 100);
        assert_eq!(
            empty,
            vec![DesiredSlice {
                ports: json!([]),
                endpoints: json!([])
            }]
        );
    }

    #[test]
    fn a_stored_slice_with_the_same_content_matches() {
        let s = svc(false);
        let p = pod("a", "10.0.0.1", true, 8080);
        let want = desired_slices(&s, &[&p], &HashMap::new(), 100).remove(0);
        let labels = slice_labels(&s);
        assert_eq!(labels["app"], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        let stored = json!({"metadata": {"name": "web-abcde", "labels": labels,
                                         "annotations": {TRIGGER_TIME_ANNOTATION: "x"}},
                            "addressType": "IPv4", "endpoints": want.endpoints, "ports": want.ports});
        assert!(slice_matches(&stored, &want, &labels));
        let mut moved = stored.clone();
        moved["endpoints"][0]["conditions"]["ready"] = json!(false);
        assert!(!slice_matches(&moved, &want, &labels));
    }
}

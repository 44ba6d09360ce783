//! The legacy Endpoints controller: for every Service with a selector, a v1 Endpoints of
//! the same name whose subsets list the selected pods' addresses (ready ones in
//! `addresses`, the others in `notReadyAddresses`) with the Service's ports resolved on
//! them, as upstream's endpoint-controller does. Each Service is reconciled by its home
//! node only; nothing is written when the subsets and labels already match.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beemesh_translator::service::{ObjectService, Part, WriteOptions};
use beemesh_translator::{ApiError, ResourceInfo};
use serde_json::{Map, Value, json};

use crate::change_wait::wait_for_change;
use crate::endpointslice::TRIGGER_TIME_ANNOTATION;
use crate::service_pods::{
    ResolvedPort, home_services_with_selector, inherited_labels, is_pod_ready, list_all, meta,
    pod_ip, pods_for, publish_not_ready, resolved_ports, selected_pods, service_selector,
    should_be_in_endpoints, trigger_time,
};

const RESYNC: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(500);
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Addresses of one port set.
#[derive(Default)]
struct Subset {
    ready: Vec<Value>,
    not_ready: Vec<Value>,
}

fn address_of(svc: &Value, pod: &Value, ip: &str) -> Value {
    let mut addr = json!({
        "ip": ip,
        "targetRef": {
            "kind": "Pod",
            "namespace": meta(pod, "namespace"),
            "name": meta(pod, "name"),
            "uid": meta(pod, "uid"),
        },
    });
    if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
        addr["nodeName"] = json!(node);
    }
    if let Some(host) = pod.pointer("/spec/hostname").and_then(Value::as_str)
        && !host.is_empty()
        && pod.pointer("/spec/subdomain").and_then(Value::as_str) == meta(svc, "name")
    {
        addr["hostname"] = json!(host);
    }
    addr
}

fn ports_json(ports: &[ResolvedPort]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                let mut v = json!({"port": p.port, "protocol": p.protocol});
                if !p.name.is_empty() {
                    v["name"] = json!(p.name);
                }
                if let Some(ap) = &p.app_protocol {
                    v["appProtocol"] = json!(ap);
                }
                v
            })
            .collect(),
    )
}

/// The subsets a Service's Endpoints should have: one per resolved port set, addresses
/// sorted by IP (upstream's RepackSubsets/SortSubsets). Terminating pods count only with
/// publishNotReadyAddresses, which also makes every address ready.
fn desired_subsets(svc: &Value, pods: &[&Value]) -> Value {
    let publish = publish_not_ready(svc);
    let mut groups: BTreeMap<Vec<ResolvedPort>, Subset> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let subset = groups.entry(resolved_ports(svc, pod)).or_default();
        let addr = address_of(svc, pod, ip);
        if publish || is_pod_ready(pod) {
            subset.ready.push(addr);
        } else {
            subset.not_ready.push(addr);
        }
    }
    let by_ip = |a: &Value, b: &Value| {
        let ip = |v: &Value| {
            v.get("ip")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        };
        ip(a).cmp(&ip(b))
    };
    let mut out = Vec::new();
    for (ports, mut subset) in groups {
        subset.ready.sort_by(by_ip);
        subset.not_ready.sort_by(by_ip);
        let mut s = Map::new();
        if !subset.ready.is_empty() {
            s.insert("addresses".into(), Value::Array(subset.ready));
        }
        if !subset.not_ready.is_empty() {
            s.insert("notReadyAddresses".into(), Value::Array(subset.not_ready));
        }
        if !ports.is_empty() {
            s.insert("ports".into(), ports_json(&ports));
        }
        out.push(Value::Object(s));
    }
    Value::Array(out)
}

fn subsets_of(endpoints: &Value) -> Value {
    match endpoints.get("subsets") {
        Some(Value::Array(a)) => Value::Array(a.clone()),
        _ => json!([]),
    }
}

/// The controller; one per node, acting on the Services it is home of.
pub struct EndpointsController {
    service: ObjectService,
    /// Services (namespace, name) with a selector this node reconciled in its last pass:
    /// when one is gone, its Endpoints go too (upstream deletes them on the Service's
    /// delete event; a pass here sees only what remains).
    managed: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

impl EndpointsController {
    pub fn new(service: ObjectService) -> Self {
        EndpointsController {
            service,
            managed: std::sync::Mutex::default(),
        }
    }

    fn resource(&self, plural: &str) -> Result<Arc<ResourceInfo>, ApiError> {
        self.service.registry.served("", "v1", plural)
    }

    /// Runs forever: a pass on start, on every Service, pod or Endpoints change, and every
    /// `RESYNC`.
    pub async fn run(self) {
        loop {
            let from = self.service.store.revision();
            let started = Instant::now();
            let wait = match self.reconcile_all().await {
                Ok(false) => RESYNC,
                Ok(true) => SHORT,
                Err(e) => {
                    tracing::warn!(error = %e, "endpoints reconcile failed");
                    SHORT
                }
            };
            let (Ok(pods), Ok(services), Ok(endpoints)) = (
                self.resource("pods"),
                self.resource("services"),
                self.resource("endpoints"),
            ) else {
                return;
            };
            tokio::select! {
                _ = wait_for_change(&self.service, &pods, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &services, from, wait, |_| true) => {}
                _ = wait_for_change(&self.service, &endpoints, from, wait, |_| true) => {}
            }
            if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }

    /// One pass over every Service with a selector this node is home of; true when a
    /// write failed and another look is due soon.
    pub async fn reconcile_all(&self) -> Result<bool, ApiError> {
        let services_res = self.resource("services")?;
        let endpoints_res = self.resource("endpoints")?;
        let all = list_all(&self.service, &services_res)?;
        let services = home_services_with_selector(&self.service, &services_res, &all);
        let was_managing = self.managed.lock().map(|m| !m.is_empty()).unwrap_or(false);
        if services.is_empty() && !was_managing {
            return Ok(false);
        }
        let pods = pods_for(&self.service, &*self.resource("pods")?, &services)?;
        let mut existing: HashMap<(String, String), Value> = HashMap::new();
        for ep in list_all(&self.service, &endpoints_res)? {
            if let (Some(ns), Some(name)) = (meta(&ep, "namespace"), meta(&ep, "name")) {
                existing.insert((ns.to_string(), name.to_string()), ep);
            }
        }
        let mut soon = false;
        let empty = Vec::new();
        // Services that left this node's care (deleted, lost their selector, or now
        // homed elsewhere) are forgotten; only deleted ones lose their Endpoints.
        let present: std::collections::HashSet<(String, String)> = all
            .iter()
            .filter_map(|s| {
                Some((
                    meta(s, "namespace")?.to_string(),
                    meta(s, "name")?.to_string(),
                ))
            })
            .collect();
        let gone: Vec<(String, String)> = match self.managed.lock() {
            Ok(mut managed) => {
                let gone = managed.difference(&present).cloned().collect();
                managed.clear();
                gone
            }
            Err(_) => Vec::new(),
        };
        for (ns, name) in gone {
            if existing.contains_key(&(ns.clone(), name.clone())) {
                match self
                    .service
                    .delete(&endpoints_res, Some(&ns), &name, &Default::default(), false)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.code() == 404 => {}
                    Err(e) => {
                        tracing::debug!(error = %e, namespace = ns, service = name, "endpoints delete failed");
                        soon = true;
                        // Kept, so the next pass tries again.
                        if let Ok(mut managed) = self.managed.lock() {
                            managed.insert((ns.clone(), name.clone()));
                        }
                    }
                }
            }
        }
        for svc in &services {
            let (Some(ns), Some(name), Some(selector)) = (
                meta(svc, "namespace"),
                meta(svc, "name"),
                service_selector(svc),
            ) else {
                continue;
            };
            if let Ok(mut managed) = self.managed.lock() {
                managed.insert((ns.to_string(), name.to_string()));
            }
            let selected = selected_pods(selector, pods.get(ns).unwrap_or(&empty));
            let subsets = desired_subsets(svc, &selected);
            let labels: Map<String, Value> = inherited_labels(svc).into_iter().collect();
            let current = existing.get(&(ns.to_string(), name.to_string()));
            if let Err(e) = self
                .sync(&endpoints_res, ns, name, current, subsets, labels)
                .await
            {
                tracing::debug!(error = %e, namespace = ns, service = name, "endpoints sync failed");
                soon = true;
            }
        }
        Ok(soon)
    }

    async fn sync(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        current: Option<&Value>,
        subsets: Value,
        labels: Map<String, Value>,
    ) -> Result<(), ApiError> {
        let opts = WriteOptions::default();
        let labels_of = |v: &Value| {
            v.pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        match current {
            Some(cur) if subsets_of(cur) == subsets && labels_of(cur) == labels => Ok(()),
            Some(_) => {
                let when = trigger_time();
                self.service
                    .update(res, Some(ns), name, Part::Main, &opts, move |cur| {
                        let mut new = cur.clone();
                        new["subsets"] = subsets.clone();
                        new["metadata"]["labels"] = Value::Object(labels.clone());
                        new["metadata"]["annotations"][TRIGGER_TIME_ANNOTATION] = json!(when);
                        Ok(new)
                    })
                    .await
                    .map(|_| ())
            }
            None => {
                let obj = json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {
                        "name": name,
                        "namespace": ns,
                        "labels": labels,
                        "annotations": {TRIGGER_TIME_ANNOTATION: trigger_time()},
                    },
                    "subsets": subsets,
                });
                match self.service.create(res, Some(ns), obj, &opts).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")},
               "spec": {"nodeName": "n1", "containers": [{"name": "c"}]},
               "status": {"phase": "Running", "podIP": ip,
                          "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn ready_and_not_ready_addresses_sorted_by_ip() {
        let svc = json!({"metadata": {"name": "web", "namespace": "ns"},
                         "spec": {"selector": {"app": "web"},
                                  "ports": [{"port": 80, "targetPort": 9376, "protocol": "TCP"}]}});
        let a = pod("a", "10.0.0.10", true);
        let b = pod("b", "10.0.0.9", true);
        let c = pod("c", "10.0.0.1", false);
        let subsets = desired_subsets(&svc, &[&a, &b, &c]);
        assert_eq!(subsets.as_array().unwrap().len(), 1);
        let s = &subsets[0];
        assert_eq!(s["addresses"][0]["ip"], "10.0.0.9");
        assert_eq!(s["addresses"][1]["ip"], "10.0.0.10");
        assert_eq!(s["addresses"][0]["targetRef"]["name"], "b");
        assert_eq!(s["addresses"][0]["nodeName"], "n1");
        assert_eq!(s["notReadyAddresses"][0]["ip"], "10.0.0.1");
        assert_eq!(s["ports"], json!([{"port": 9376, "protocol": "TCP"}]));
        assert_eq!(desired_subsets(&svc, &[]), json!([]));
    }
}

//! Objects every cluster has from its first start beyond the system namespaces: the
//! `kubernetes` Service in `default` (what in-cluster clients find as
//! `kubernetes.default.svc`), and its Endpoints and EndpointSlice naming the API
//! servers. Upstream's bootstrap controller keeps them; here each node adds itself.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::registry::ResourceInfo;
use crate::service::{ObjectService, Part, WriteOptions};
use crate::service_alloc;

/// The namespace and name of the API's own Service.
pub const KUBERNETES_NAMESPACE: &str = "default";
pub const KUBERNETES_SERVICE: &str = "kubernetes";
/// The port the `kubernetes` Service targets until a node reports its own
/// (`beemesh up`'s default listen port, upstream's default secure port).
pub const DEFAULT_API_PORT: u16 = 6443;

impl ObjectService {
    fn served(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<std::sync::Arc<ResourceInfo>> {
        self.registry
            .get(group, version, plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
    }

    /// Creates the `kubernetes` Service (ClusterIP, the first address of the service
    /// range, port 443 → the API port) unless it exists. Idempotent.
    pub async fn bootstrap_kubernetes_service(&self) -> Result<()> {
        let services = self.served("", "v1", "services")?;
        if self
            .store
            .get(&services, Some(KUBERNETES_NAMESPACE), KUBERNETES_SERVICE)
            .is_ok()
        {
            return Ok(());
        }
        let ip = service_alloc::kubernetes_service_ip().to_string();
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": KUBERNETES_SERVICE,
                "namespace": KUBERNETES_NAMESPACE,
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": ip,
                "clusterIPs": [ip],
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                           "targetPort": DEFAULT_API_PORT}],
            },
        });
        match self
            .create(
                &services,
                Some(KUBERNETES_NAMESPACE),
                svc,
                &WriteOptions::default(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.reason() == "AlreadyExists" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Adds this node's API address to the `kubernetes` Endpoints and EndpointSlice (created
    /// when missing) and points the Service's targetPort at its port. Each node of a mesh
    /// adds itself, so the objects list every API server. Idempotent.
    pub async fn bootstrap_api_endpoints(&self, api: SocketAddr) -> Result<()> {
        let ip = api.ip().to_string();
        let port = api.port();
        let address_type = if api.is_ipv4() { "IPv4" } else { "IPv6" };
        let ns = Some(KUBERNETES_NAMESPACE);
        let opts = WriteOptions::default();

        let services = self.served("", "v1", "services")?;
        if let Ok(svc) = self.store.get(&services, ns, KUBERNETES_SERVICE)
            && svc.pointer("/spec/ports/0/targetPort") != Some(&json!(port))
        {
            self.update(
                &services,
                ns,
                KUBERNETES_SERVICE,
                Part::Main,
                &opts,
                |cur| {
                    let mut new = cur.clone();
                    if let Some(p) = new.pointer_mut("/spec/ports/0") {
                        p["targetPort"] = json!(port);
                    }
                    Ok(new)
                },
            )
            .await?;
        }

        let ports = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
        let endpoints = self.served("", "v1", "endpoints")?;
        let subset_has = |obj: &Value| {
            obj.pointer("/subsets/0/addresses")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x["ip"] == json!(ip)))
        };
        match self.store.get(&endpoints, ns, KUBERNETES_SERVICE) {
            Ok(cur) if subset_has(&cur) => {}
            Ok(_) => {
                self.update(
                    &endpoints,
                    ns,
                    KUBERNETES_SERVICE,
                    Part::Main,
                    &opts,
                    |cur| {
                        let mut new = cur.clone();
                        let mut addresses = cur
                            .pointer("/subsets/0/addresses")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        addresses.push(json!({"ip": ip}));
                        new["subsets"] = json!([{"addresses": addresses, "ports": ports}]);
                        Ok(new)
                    },
                )
                .await?;
            }
            Err(_) => {
                let obj = json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {
                        "name": KUBERNETES_SERVICE,
                        "namespace": KUBERNETES_NAMESPACE,
                        "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                    },
                    "subsets": [{"addresses": [{"ip": ip}], "ports": ports}],
                });
                ignore_exists(self.create(&endpoints, ns, obj, &opts).await)?;
            }
        }

        let slices = self.served("discovery.k8s.io", "v1", "endpointslices")?;
        let endpoint = json!({"addresses": [ip], "conditions": {"ready": true}});
        let slice_has = |obj: &Value| {
            obj.get("endpoints")
                .and_then(Value::as_array)
                .is_some_and(|e| e.iter().any(|x| x["addresses"] == json!([ip])))
        };
        match self.store.get(&slices, ns, KUBERNETES_SERVICE) {
            Ok(cur) if slice_has(&cur) => {}
            Ok(_) => {
                self.update(&slices, ns, KUBERNETES_SERVICE, Part::Main, &opts, |cur| {
                    let mut new = cur.clone();
                    let mut list = cur
                        .get("endpoints")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    list.push(endpoint.clone());
                    new["endpoints"] = json!(list);
                    new["ports"] = ports.clone();
                    Ok(new)
                })
                .await?;
            }
            Err(_) => {
                let obj = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": KUBERNETES_SERVICE,
                        "namespace": KUBERNETES_NAMESPACE,
                        "labels": {"kubernetes.io/service-name": KUBERNETES_SERVICE},
                    },
                    "addressType": address_type,
                    "endpoints": [endpoint],
                    "ports": ports,
                });
                ignore_exists(self.create(&slices, ns, obj, &opts).await)?;
            }
        }
        Ok(())
    }
}

fn ignore_exists<T>(r: Result<T>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.reason() == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

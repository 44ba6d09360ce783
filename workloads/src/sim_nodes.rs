//! Many simulated Nodes in one process, kwok-style (`beemesh up --sim-nodes N`): the
//! process registers N extra Nodes named `<node>-sim-0001` … with the capacity of
//! `--sim-node-capacity`, keeps each one's Lease and status as a kubelet would, and runs
//! the pods bound to any of them on its own `sim` runtime through one shared `PodAgent`.
//! Placement sees them as ordinary Ready nodes, so 1,000 nodes × 30 pods can be measured
//! on one machine (bench `pod-startup`).
//!
//! Lease renewals are spread evenly over one renewal period: simulated node `i` starts
//! `i / N` of a period after the first, so N nodes cost N / period Lease writes per
//! second in a steady stream rather than a burst of N every period.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beemesh_translator::service::ObjectService;

use crate::node_registration::{NodeConfig, NodeRegistration};
use crate::runtime::{Runtime, SimConfig, SimRuntime};

/// kwok's default node capacity (`cpu=32, memory=256Gi, pods=110`).
pub const DEFAULT_CAPACITY: [(&str, &str); 3] =
    [("cpu", "32"), ("memory", "256Gi"), ("pods", "110")];

/// The label every simulated Node carries (value `true`), so they can be selected.
pub const SIMULATED_LABEL: &str = "beemesh.io/simulated";

/// The simulated nodes of one process.
pub struct SimNodes {
    nodes: Vec<(NodeConfig, Arc<dyn Runtime>)>,
}

/// `<node>-sim-0001`: zero-padded to four digits (more when N ≥ 10,000).
pub fn sim_node_name(base: &str, index: usize, count: usize) -> String {
    let width = count.to_string().len().max(4);
    format!("{base}-sim-{index:0width$}")
}

impl SimNodes {
    /// `count` nodes modelled on `base` (this process's own Node: address, versions,
    /// labels), each with `capacity` (allocatable = capacity) and a sim runtime whose
    /// containers start after `start_delay`.
    pub fn new(
        base: &NodeConfig,
        count: usize,
        capacity: Option<BTreeMap<String, String>>,
        start_delay: Duration,
    ) -> Self {
        let capacity = capacity.unwrap_or_else(|| {
            DEFAULT_CAPACITY
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        let nodes = (1..=count)
            .map(|i| {
                let name = sim_node_name(&base.name, i, count);
                let mut labels = base.labels.clone();
                labels.insert(SIMULATED_LABEL.to_string(), "true".to_string());
                let config = NodeConfig {
                    name: name.clone(),
                    capacity: Some(capacity.clone()),
                    labels,
                    // The base node's taints are its own (e.g. control-plane only).
                    taints: Vec::new(),
                    has_runtime: true,
                    ..base.clone()
                };
                let runtime: Arc<dyn Runtime> = Arc::new(SimRuntime::new(SimConfig {
                    node_name: name,
                    start_delay,
                }));
                (config, runtime)
            })
            .collect();
        SimNodes { nodes }
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Each simulated node's name and runtime, for the pod agent.
    pub fn runtimes(&self) -> impl Iterator<Item = (String, Arc<dyn Runtime>)> + '_ {
        self.nodes.iter().map(|(c, r)| (c.name.clone(), r.clone()))
    }

    /// Registers every node and keeps its Lease and status, the starts spread over one
    /// Lease renewal period.
    pub fn spawn_registrations(self, service: &ObjectService) {
        let count = self.nodes.len().max(1) as u32;
        for (i, (config, _)) in self.nodes.into_iter().enumerate() {
            let period = Duration::from_millis(u64::from(config.lease_duration_seconds) * 250)
                .max(Duration::from_millis(100));
            let offset = period * i as u32 / count;
            let registration = NodeRegistration::new(service.clone(), config);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                registration.run().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_zero_padded_and_sort_in_order() {
        assert_eq!(sim_node_name("a", 1, 100), "a-sim-0001");
        assert_eq!(sim_node_name("a", 1000, 1000), "a-sim-1000");
        assert_eq!(sim_node_name("a", 7, 20_000), "a-sim-00007");
    }
}

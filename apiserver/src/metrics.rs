//! Prometheus metrics served at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
    pub resource: String,
}

/// The node's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<VerbLabels, Histogram>,
    watches: Gauge,
    revision: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<VerbLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let watches = Gauge::default();
        let revision = Gauge::default();
        registry.register(
            "apiserver_request",
            "API requests by verb, resource and HTTP code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency by verb and resource (watches excluded)",
            latency.clone(),
        );
        registry.register("apiserver_watches", "Open watch streams", watches.clone());
        registry.register(
            "beemesh_replica_revision",
            "The last revision of this node's replica",
            revision.clone(),
        );
        registry.register_collector(Box::new(PlacementCollector(
            beemesh_workloads::placement::mesh_bids::PlacementStats::global(),
        )));
        Metrics {
            registry: Arc::new(registry),
            requests,
            latency,
            watches,
            revision,
        }
    }

    pub fn observe(&self, verb: &str, resource: &str, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                resource: resource.to_string(),
                code: code.to_string(),
            })
            .inc();
        if verb != "watch" {
            self.latency
                .get_or_create(&VerbLabels {
                    verb: verb.to_string(),
                    resource: resource.to_string(),
                })
                .observe(seconds);
        }
    }

    pub fn watch_started(&self) {
        self.watches.inc();
    }

    pub fn watch_ended(&self) {
        self.watches.dec();
    }

    pub fn set_revision(&self, rev: u64) {
        self.revision.set(rev as i64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Placement's tender/bid counters (`beemesh_workloads::placement::mesh_bids`), read at
/// each scrape.
#[derive(Debug)]
struct PlacementCollector(Arc<beemesh_workloads::placement::mesh_bids::PlacementStats>);

impl prometheus_client::collector::Collector for PlacementCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use beemesh_workloads::placement::mesh_bids::PlacementStats;
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        let s = &self.0;
        for (name, help, value) in [
            (
                "beemesh_placement_tenders_sent",
                "Pods tendered on the mesh by this node as their placement home",
                &s.tenders_sent,
            ),
            (
                "beemesh_placement_bids_received",
                "Node bids this node received from other members",
                &s.bids_received,
            ),
            (
                "beemesh_placement_bids_sent",
                "Node bids this node sent for the Nodes it hosts",
                &s.bids_sent,
            ),
            (
                "beemesh_placement_fallbacks",
                "Tender batches for which a member hosting Ready Nodes did not answer in the window (its Nodes were evaluated from the replica)",
                &s.fallbacks,
            ),
            (
                "beemesh_placement_stale_bids",
                "Bids that lost the award's check (capacity taken meanwhile)",
                &s.stale_bids,
            ),
        ] {
            let counter = ConstCounter::new(PlacementStats::get(value));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

//! marathon-lb's health-result cache (`--health-check`): a task whose
//! Marathon answer carries no `healthCheckResults` keeps its last known
//! verdict instead of being dropped. Verdicts are kept per task id, at most
//! `--lru-cache-capacity` of them (oldest evicted first). In one-shot mode
//! the cache starts empty, exactly as marathon-lb's one-shot run.

use std::collections::{HashMap, VecDeque};

use mlb_model::App;

/// Last health verdict per task id.
#[derive(Debug)]
pub struct HealthCache {
    capacity: usize,
    verdicts: HashMap<String, bool>,
    order: VecDeque<String>,
}

impl HealthCache {
    /// A cache of up to `capacity` verdicts.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            verdicts: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn remember(&mut self, task: &str, alive: bool) {
        if self.verdicts.insert(task.to_owned(), alive).is_none() {
            self.order.push_back(task.to_owned());
            if self.order.len() > self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.verdicts.remove(&old);
            }
        }
    }

    /// Record the verdicts of tasks that have results, and give tasks
    /// without results (of apps with health checks) their cached verdict;
    /// how many tasks got one.
    pub fn apply(&mut self, apps: &mut [App]) -> usize {
        let mut cached = 0;
        for app in apps.iter_mut().filter(|a| !a.health_checks.is_empty()) {
            for task in &mut app.tasks {
                match &task.health_results {
                    Some(results) => {
                        let alive = results.iter().any(|a| *a);
                        self.remember(&task.id, alive);
                    }
                    None => {
                        if let Some(alive) = self.verdicts.get(&task.id) {
                            task.health_results = Some(vec![*alive]);
                            cached += 1;
                        }
                    }
                }
            }
        }
        cached
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlb_model::{HealthCheck, Task};

    fn app(results: Option<Vec<bool>>) -> App {
        App {
            id: "/a".into(),
            health_checks: vec![HealthCheck::default()],
            tasks: vec![Task {
                id: "t1".into(),
                health_results: results,
                ..Task::default()
            }],
            ..App::default()
        }
    }

    #[test]
    fn missing_results_reuse_the_last_verdict() {
        let mut cache = HealthCache::new(10);
        let mut apps = vec![app(None)];
        cache.apply(&mut apps);
        assert_eq!(apps[0].tasks[0].health_results, None, "nothing known yet");
        cache.apply(&mut [app(Some(vec![false, true]))]);
        let mut apps = vec![app(None)];
        cache.apply(&mut apps);
        assert_eq!(apps[0].tasks[0].health_results, Some(vec![true]));
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let mut cache = HealthCache::new(1);
        cache.remember("a", true);
        cache.remember("b", true);
        assert!(!cache.verdicts.contains_key("a"));
        assert!(cache.verdicts.contains_key("b"));
    }
}

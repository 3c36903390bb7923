//! インスタンスを覚えておく「登録簿」: `Arc`で持つと中身がいつまでも解放されず、
//! `Weak`で持てば、使う人がいなくなった時点で解放されます。
//!
//! 実行方法: `cargo run -p weak-registry`

use std::sync::{Arc, Mutex, Weak};

// ANCHOR: resource
struct Resource {
    name: String,
    _data: Vec<u8>, // 大きなデータの代わり
}

impl Resource {
    fn new(name: String) -> Arc<Self> {
        Arc::new(Resource {
            name,
            _data: vec![0; 10_000],
        })
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        println!("  {}を解放しました", self.name);
    }
}
// ANCHOR_END: resource

// ANCHOR: strong
/// 作られたリソースを`Arc`で覚えておく登録簿（リークの原因になります）。
struct StrongRegistry {
    entries: Mutex<Vec<Arc<Resource>>>,
}

impl StrongRegistry {
    const fn new() -> Self {
        StrongRegistry {
            entries: Mutex::new(Vec::new()),
        }
    }

    fn register(&self, resource: &Arc<Resource>) {
        // 登録簿も強い参照を1つ持つので、ほかの参照が全部なくなっても参照カウントは0になりません。
        self.entries.lock().unwrap().push(Arc::clone(resource));
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

// グローバルな登録簿は、Rustでは`static`として明示的に書きます。
static STRONG: StrongRegistry = StrongRegistry::new();
// ANCHOR_END: strong

// ANCHOR: weak
/// 作られたリソースを`Weak`で覚えておく登録簿。リソースの寿命には口を出しません。
struct WeakRegistry {
    entries: Mutex<Vec<Weak<Resource>>>,
}

impl WeakRegistry {
    const fn new() -> Self {
        WeakRegistry {
            entries: Mutex::new(Vec::new()),
        }
    }

    fn register(&self, resource: &Arc<Resource>) {
        self.entries.lock().unwrap().push(Arc::downgrade(resource));
    }

    /// まだ生きているリソースの数。解放済みの項目はついでに取り除きます。
    fn live_count(&self) -> usize {
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|weak| weak.strong_count() > 0);
        entries.len()
    }

    /// 生きているリソースを使うときは、`upgrade`で一時的に強い参照を得ます。
    fn names(&self) -> Vec<String> {
        let entries = self.entries.lock().unwrap();
        entries
            .iter()
            .filter_map(Weak::upgrade)
            .map(|resource| resource.name.clone())
            .collect()
    }
}

static WEAK: WeakRegistry = WeakRegistry::new();
// ANCHOR_END: weak

// ANCHOR: main
fn main() {
    println!("== Arcの登録簿 ==");
    let mut kept = Vec::new();
    for i in 0..4 {
        let resource = Resource::new(format!("strong-{i}"));
        STRONG.register(&resource);
        if i < 2 {
            kept.push(resource); // 半分だけ手元に残します
        }
    }
    println!("作成後: 登録簿に{}個、手元に{}個", STRONG.len(), kept.len());
    let strong_0 = Arc::downgrade(&kept[0]);
    drop(kept);
    println!(
        "手元の参照を捨てた後: 登録簿に{}個（strong-0の強い参照は{}個）",
        STRONG.len(),
        strong_0.strong_count()
    );

    println!("== Weakの登録簿 ==");
    let mut kept = Vec::new();
    for i in 0..4 {
        let resource = Resource::new(format!("weak-{i}"));
        WEAK.register(&resource);
        if i < 2 {
            kept.push(resource);
        }
        // 手元に残さなかった`resource`は、ここでドロップされて解放されます。
    }
    println!(
        "作成後: 生きているのは{}個 {:?}",
        WEAK.live_count(),
        WEAK.names()
    );
    drop(kept);
    println!(
        "手元の参照を捨てた後: 生きているのは{}個",
        WEAK.live_count()
    );
    println!("mainを終わります（staticの中身はドロップされません）");
}
// ANCHOR_END: main

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_of_arc_keeps_everything_alive() {
        let registry = StrongRegistry::new();
        let watchers: Vec<Weak<Resource>> = (0..4)
            .map(|i| {
                let resource = Resource::new(format!("s{i}"));
                registry.register(&resource);
                Arc::downgrade(&resource)
            })
            .collect();
        // 手元の`Arc`はもうないのに、4つとも生きていて、強い参照は登録簿の1つだけです。
        assert_eq!(registry.len(), 4);
        assert!(watchers.iter().all(|w| w.strong_count() == 1));
        // 登録簿を捨てて、初めて解放されます。
        drop(registry);
        assert!(watchers.iter().all(|w| w.upgrade().is_none()));
    }

    #[test]
    fn a_registry_of_weak_lets_them_go_and_prunes_dead_entries() {
        let registry = WeakRegistry::new();
        let mut kept = Vec::new();
        for i in 0..4 {
            let resource = Resource::new(format!("w{i}"));
            registry.register(&resource);
            if i < 2 {
                kept.push(resource);
            }
        }
        assert_eq!(registry.live_count(), 2);
        assert_eq!(registry.names(), ["w0", "w1"]);
        assert_eq!(
            registry.entries.lock().unwrap().len(),
            2,
            "解放済みの項目が残っています"
        );
        drop(kept);
        assert_eq!(registry.live_count(), 0);
        assert!(registry.entries.lock().unwrap().is_empty());
    }
}

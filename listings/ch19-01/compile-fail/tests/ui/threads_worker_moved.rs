use std::thread;

// Pythonの`WorkerThread`と同じく、結果をワーカー自身のフィールドにためる
struct Worker {
    name: String,
    results: Vec<u64>,
}

impl Worker {
    fn run(&mut self) {
        for i in 0..3 {
            self.results.push(i * i);
        }
    }
}

fn main() {
    let mut worker = Worker {
        name: "Worker-0".to_string(),
        results: Vec::new(),
    };
    let handle = thread::spawn(move || worker.run());

    // スレッドが動いている間に、途中の結果をのぞこうとする
    println!("{}の途中経過: {:?}", worker.name, worker.results);

    handle.join().unwrap();
}

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let hits = Arc::new(Mutex::new(0_u64));

    let task_hits = Arc::clone(&hits);
    let handle = tokio::spawn(async move {
        let mut count = task_hits.lock().unwrap();
        *count += 1;
        // ロックを持ったまま待つ
        tokio::time::sleep(Duration::from_millis(10)).await;
        *count += 1;
    });

    handle.await.unwrap();
    println!("{}", hits.lock().unwrap());
}

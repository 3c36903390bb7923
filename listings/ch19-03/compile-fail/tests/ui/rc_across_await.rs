use std::rc::Rc;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let handle = tokio::spawn(async {
        let names = Rc::new(vec![String::from("A"), String::from("B")]);
        tokio::time::sleep(Duration::from_millis(10)).await;
        println!("{}人です", names.len());
    });

    handle.await.unwrap();
}

#[tokio::main]
async fn main() {
    let names = vec![String::from("A"), String::from("B")];

    let handle = tokio::spawn(async {
        println!("{}人です", names.len());
    });

    handle.await.unwrap();
}

"""balancerのワーカーをPythonで書いたもの。Rustのディスパッチャから起動されます。

    cargo run -p balancer -- --demo -- python3 listings/exercises/balancer/examples/worker.py

標準入力から1行に1つのタスク（JSON）を読み、1タスクにつき1行の返事を書きます。
"""

import json
import sys
import time

# ANCHOR: worker
for line in sys.stdin:  # 標準入力が閉じたら（ディスパッチャが終わったら）ループも終わります
    task = json.loads(line)
    try:
        if "cpu" in task:
            value = sum(i * i for i in range(1, task["cpu"] + 1))
        elif "sleep_ms" in task:
            time.sleep(task["sleep_ms"] / 1000)
            value = task["sleep_ms"]
        else:
            raise ValueError(f"Pythonのワーカーが知らないタスクです: {line.strip()}")
        reply = {"id": task["id"], "value": value}
    except Exception as e:
        print(f"id {task['id']}: {e!r}", file=sys.stderr)
        reply = {"id": task["id"], "error": str(e)}
    # flushしないと、返事はバッファに溜まったままディスパッチャに届きません
    print(json.dumps(reply, ensure_ascii=False), flush=True)
# ANCHOR_END: worker

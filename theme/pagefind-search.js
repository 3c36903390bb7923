// 日本語で検索できるように、mdBookの検索の代わりにPagefindの索引で検索する欄を置きます。
//
// mdBook自身の検索インデックスは空白で単語を区切るので、日本語の本文では何も見つかりません。
// `cargo xtask build`／`cargo xtask serve`は、ICUで日本語を単語に分けるPagefindの索引を
// `pagefind/`に書き出します。このスクリプトはその索引があるときだけ検索ボタンを出します
// （`mdbook serve`で読むときなど索引がなければ、何も足しません）。
//
// 結果の並べ方はPagefindのUIに任せず、ここで決めます:
// - 「共有メモリ」のような複合語はICUが「共有」「メモリ」に分けるので、Pagefindは語を別々に数え、
//   「メモリリーク」のページを先に出してしまいます。そこで語の並びのまま含むページ（"共有メモリ"の
//   完全一致検索）を先に、部分だけを含むページを後に並べます（それぞれの中ではPagefindの順位のまま）。
// - 同じ抜粋を2度は見せません（見出しの下の抜粋が同じなら1つにまとめます）。
// - ひらがなで打った語がなければ、カタカナの語として探します（「でっどろっく」→「デッドロック」）。
(function () {
    "use strict";
    const root = typeof path_to_root === "string" ? path_to_root : "";
    // 本のルートの絶対パス。本がサブパス（例: https://example.github.io/book/）に置かれても、
    // 索引の場所と結果のURLが正しくなるように、各ページの`path_to_root`から求めます。
    // 404.htmlは<base href>で本のルートを指すので、location.hrefではなくbaseURIを基準にします。
    const baseUrl = new URL(root || "./", document.baseURI).pathname;
    const bundle = baseUrl + "pagefind/";
    // Pagefindの順位付け（https://pagefind.app/docs/ranking/）。本は30ページほどと小さく、
    // 短い概要のページが用語の多いページより上に来やすいので、ページの長さの補正を弱めます。
    const ranking = { pageLength: 0.5, termSaturation: 1.0 };
    const firstShown = 8; // 最初に表示する件数（残りは「さらに表示」で）
    const icon =
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">' +
        '<circle cx="10.5" cy="10.5" r="6.5" fill="none" stroke="currentColor" stroke-width="2.2"/>' +
        '<line x1="15.5" y1="15.5" x2="21" y2="21" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>';

    let pagefind = null;
    let panel = null;
    let button = null;
    let input = null;
    let message = null;
    let list = null;
    let more = null;
    let searchId = 0;
    let pending = [];
    let shownTerm = "";

    function el(tag, className, text) {
        const e = document.createElement(tag);
        if (className) e.className = className;
        if (text !== undefined) e.textContent = text;
        return e;
    }

    function setOpen(open) {
        panel.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        if (open) input.focus();
    }

    // ひらがなだけの語（「すれっど」）は、カタカナの語（「スレッド」）として本文にあればそちらで探します。
    // （ひらがなのままだと「で」のような助詞に一致して、関係のないページが並びます。）
    async function rankedSearch(term) {
        if (/^[\u3041-\u3096\u30fc]{2,}$/.test(term)) {
            const katakana = term.replace(/[\u3041-\u3096]/g, (c) =>
                String.fromCharCode(c.charCodeAt(0) + 0x60),
            );
            const asKatakana = await phraseFirst(katakana);
            if (asKatakana.whole > 0) return asKatakana.results;
        }
        return (await phraseFirst(term)).results;
    }

    // 語の並びのまま含むページを先に、部分だけを含むページを後に（それぞれPagefindの順位のまま）。
    async function phraseFirst(term) {
        const quoted = /^\s*".*"\s*$/.test(term);
        const [words, phrase] = await Promise.all([
            pagefind.search(term),
            quoted ? null : pagefind.search('"' + term.replace(/"/g, "") + '"'),
        ]);
        if (!phrase || phrase.results.length === 0) return { results: words.results, whole: 0 };
        const whole = new Set(phrase.results.map((r) => r.id));
        const found = new Set(words.results.map((r) => r.id));
        const results = [
            ...words.results.filter((r) => whole.has(r.id)),
            ...phrase.results.filter((r) => !found.has(r.id)),
            ...words.results.filter((r) => !whole.has(r.id)),
        ];
        return { results: results, whole: whole.size };
    }

    // 1ページ分の結果: ページの題と、語を多く含む見出し（最大3つ、本文の順）とその抜粋。
    // 語の並びのまま（「共有メモリ」）を含む抜粋の見出しを、部分だけを含むものより先に選びます。
    function renderResult(data, term) {
        const plain = (html) => html.replace(/<[^>]*>/g, "");
        const whole = (s) => (term && plain(s.excerpt).includes(term) ? 1 : 0);
        const li = el("li", "pagefind-ui__result");
        const inner = el("div", "pagefind-ui__result-inner");
        li.appendChild(inner);
        const title = el("p", "pagefind-ui__result-title");
        const link = el("a", "pagefind-ui__result-link", data.meta.title || data.url);
        link.href = data.url;
        title.appendChild(link);
        inner.appendChild(title);

        const seen = new Set();
        const subs = (data.sub_results || [])
            .filter((s) => s.url !== data.url && s.title !== data.meta.title)
            .map((s, order) => ({ ...s, order, hits: (s.locations || []).length, whole: whole(s) }))
            .sort((a, b) => b.whole - a.whole || b.hits - a.hits)
            .filter((s) => {
                if (seen.has(s.excerpt)) return false;
                seen.add(s.excerpt);
                return true;
            })
            .slice(0, 3)
            .sort((a, b) => a.order - b.order);
        if (!seen.has(data.excerpt) && subs.length < 3) {
            const excerpt = el("p", "pagefind-ui__result-excerpt");
            excerpt.innerHTML = data.excerpt; // Pagefindがエスケープし、<mark>だけを付けたもの
            inner.appendChild(excerpt);
        }
        for (const s of subs) {
            const nested = el("div", "pagefind-ui__result-nested");
            const t = el("p", "pagefind-ui__result-title");
            const a = el("a", "pagefind-ui__result-link", s.title);
            a.href = s.url;
            t.appendChild(a);
            nested.appendChild(t);
            const excerpt = el("p", "pagefind-ui__result-excerpt");
            excerpt.innerHTML = s.excerpt;
            nested.appendChild(excerpt);
            inner.appendChild(nested);
        }
        return li;
    }

    async function showMore(id) {
        const batch = pending.splice(0, firstShown);
        const data = await Promise.all(batch.map((r) => r.data()));
        if (id !== searchId) return;
        for (const d of data) list.appendChild(renderResult(d, shownTerm));
        more.hidden = pending.length === 0;
    }

    async function search(term) {
        const id = ++searchId;
        term = term.trim();
        list.replaceChildren();
        more.hidden = true;
        if (!term) {
            message.textContent = "";
            return;
        }
        message.textContent = "「" + term + "」を検索しています…";
        const results = await rankedSearch(term);
        if (id !== searchId) return; // 入力が続いて、新しい検索が始まった
        pending = results.slice();
        shownTerm = term.replace(/"/g, "");
        await showMore(id);
        if (id !== searchId) return;
        // 結果を描いてから件数を出します（「検索しています」が消えたら結果がそろっています）。
        message.textContent =
            results.length === 0
                ? "「" + term + "」に一致するページはありませんでした"
                : "「" + term + "」の検索結果: " + results.length + "ページ";
    }

    async function init() {
        const probe = await fetch(bundle + "pagefind.js", { method: "HEAD" }).catch(() => null);
        if (!probe || !probe.ok) return; // 索引がない（mdbook serveなど）

        const buttons = document.querySelector("#mdbook-menu-bar .left-buttons");
        const menuBar = document.getElementById("mdbook-menu-bar");
        if (!buttons || !menuBar) return;

        button = el("button", "icon-button");
        button.id = "pagefind-toggle";
        button.type = "button";
        button.title = "本文を検索（S または /）";
        button.setAttribute("aria-label", "本文を検索");
        button.setAttribute("aria-expanded", "false");
        button.setAttribute("aria-keyshortcuts", "s /");
        button.setAttribute("aria-controls", "pagefind-panel");
        button.innerHTML = icon;
        buttons.appendChild(button);

        panel = el("div", "pagefind-ui");
        panel.id = "pagefind-panel";
        panel.hidden = true;
        const form = el("form", "pagefind-ui__form");
        form.setAttribute("role", "search");
        input = el("input", "pagefind-ui__search-input");
        input.type = "search";
        input.placeholder = "本文を検索";
        input.setAttribute("aria-label", "本文を検索");
        input.autocomplete = "off";
        form.appendChild(input);
        const area = el("div", "pagefind-ui__results-area");
        message = el("p", "pagefind-ui__message");
        message.setAttribute("role", "status");
        list = el("ol", "pagefind-ui__results");
        more = el("button", "pagefind-ui__button", "さらに表示");
        more.type = "button";
        more.hidden = true;
        area.append(message, list, more);
        form.appendChild(area);
        panel.appendChild(form);
        menuBar.insertAdjacentElement("afterend", panel);

        pagefind = await import(bundle + "pagefind.js");
        await pagefind.options({ baseUrl: baseUrl, ranking: ranking });
        pagefind.init();

        // 索引はローカルにあり検索は速いので、入力の途中でも素早く結果を出します。
        let timer = null;
        input.addEventListener("input", function () {
            clearTimeout(timer);
            timer = setTimeout(() => search(input.value), 100);
        });
        form.addEventListener("submit", function (e) {
            e.preventDefault();
            clearTimeout(timer);
            search(input.value);
        });
        more.addEventListener("click", () => showMore(searchId));
        button.addEventListener("click", function () {
            setOpen(panel.hidden);
        });
        document.addEventListener("keydown", function (e) {
            if (e.altKey || e.ctrlKey || e.metaKey) return;
            const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
            if (e.key === "Escape" && !panel.hidden) {
                setOpen(false);
                button.focus();
            } else if (!typing && (e.key === "s" || e.key === "S" || e.key === "/")) {
                e.preventDefault();
                setOpen(true);
            }
        });

        // mdBookと同じく ?search=語 のリンクで検索結果を開けるようにします。
        const term = new URLSearchParams(location.search).get("search");
        if (term) {
            input.value = term;
            setOpen(true);
            search(term);
        }
    }

    init();
})();

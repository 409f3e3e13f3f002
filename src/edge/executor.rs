//! Runs the fetch handler's future to a `Promise`, polling it in the very callback that
//! wakes it (the way a JavaScript `await` resumes), where wasm-bindgen-futures' spawn
//! would queue one more microtask per wake. In workerd `queueMicrotask` is the dearest
//! call of a request on the hot path: this executor took the worker's CPU per request
//! from ~680 to ~610 us in `tests/bench/edge-bench.mjs`'s sequential run.
//! [`settled`] awaits a promise through one callback made once per isolate (the body
//! read); the other awaits (gloo-net's fetch, KV, the rate-limit binding, timers) stay
//! `wasm_bindgen_futures::JsFuture`.
//!
//! What a request's path can reuse, it does: a task id keeps its waker and an awaited
//! slot its bound callbacks, for the next task or promise (no `bind` per await).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use super::slots::{Slots, Table};

type Job = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

struct Task {
    job: RefCell<Option<Job>>,
    /// Being polled now: a wake from inside the poll only asks for another round.
    polling: Cell<bool>,
    again: Cell<bool>,
    waker: Waker,
    resolve: Function,
    reject: Function,
}

thread_local! {
    /// Live tasks by id (an entry is reused once its task is done): no hashing on the
    /// path of every wake.
    static TASKS: RefCell<Table<Rc<Task>>> = RefCell::new(Table::default());
}

/// A waker names its task by id, so it is `Send + Sync` without the task being so.
struct Wakes(u32);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        run(self.0);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        run(self.0);
    }
}

/// Starts `job` now (its first poll runs before this returns) and settles the promise
/// with its result.
pub fn spawn<F>(job: F) -> Promise
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let mut settle = None;
    let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
    let Some((resolve, reject)) = settle else {
        return promise;
    };
    let job: Job = Box::pin(job);
    let id = TASKS.with(|t| {
        t.borrow_mut().insert_with(|id| {
            Rc::new(Task {
                job: RefCell::new(Some(job)),
                polling: Cell::new(false),
                again: Cell::new(false),
                waker: waker_of(id),
                resolve,
                reject,
            })
        })
    }) as u32;
    run(id);
    promise
}

/// The waker of task id `id`, made the first time the id is used (ids are handed out
/// lowest free first, so a new id is the next index).
fn waker_of(id: usize) -> Waker {
    WAKERS.with(|w| {
        let mut w = w.borrow_mut();
        if let Some(kept) = w.get(id) {
            return kept.clone();
        }
        let waker = Waker::from(Arc::new(Wakes(id as u32)));
        if w.len() == id {
            w.push(waker.clone());
        }
        waker
    })
}

thread_local! {
    /// Task ids' wakers, by id (see [`waker_of`]).
    static WAKERS: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

fn run(id: u32) {
    let Some(task) = TASKS.with(|t| t.borrow().get(id as usize).cloned()) else {
        return; // finished already: a late wake
    };
    if task.polling.replace(true) {
        task.again.set(true);
        return;
    }
    loop {
        task.again.set(false);
        let mut cx = Context::from_waker(&task.waker);
        let step = match task.job.borrow_mut().as_mut() {
            Some(job) => job.as_mut().poll(&mut cx),
            None => break,
        };
        match step {
            Poll::Ready(result) => {
                task.job.borrow_mut().take();
                TASKS.with(|t| t.borrow_mut().remove(id as usize));
                let _ = match result {
                    Ok(v) => task.resolve.call1(&JsValue::UNDEFINED, &v),
                    Err(e) => task.reject.call1(&JsValue::UNDEFINED, &e),
                };
                break;
            }
            Poll::Pending if task.again.get() => continue,
            Poll::Pending => break,
        }
    }
    task.polling.set(false);
}

/// A promise as a future, without the two wasm-bindgen closures (and their
/// FinalizationRegistry entries) that `JsFuture` makes for every await: the promise
/// settles into a slot through one callback made once per isolate, bound to the slot.
/// Used for the awaits the worker makes on every request; gloo-net's own fetch await
/// stays a `JsFuture`.
pub fn settled(promise: &Promise) -> Settling {
    let slot = SLOTS.with(|s| s.borrow_mut().claim());
    let (ok, err) = callbacks_of(slot);
    let _ = promise.unchecked_ref::<Thenable>().then_with(&ok, &err);
    Settling { slot, done: false }
}

/// `ON_SETTLE` bound to `slot`, fulfilled and rejected, made the first time the slot is
/// used (slots too are handed out lowest free first). A slot serves one promise at a
/// time (an abandoned one stays taken until its promise settles), so its callbacks can
/// serve the next one.
fn callbacks_of(slot: usize) -> (JsValue, JsValue) {
    CALLBACKS.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(kept) = c.get(slot) {
            return kept.clone();
        }
        let at = JsValue::from(slot as u32);
        let on_settle = ON_SETTLE.with(|f| f.clone());
        let pair: (JsValue, JsValue) = (
            on_settle.bind2(&JsValue::NULL, &at, &JsValue::TRUE).into(),
            on_settle.bind2(&JsValue::NULL, &at, &JsValue::FALSE).into(),
        );
        if c.len() == slot {
            c.push(pair.clone());
        }
        pair
    })
}

#[wasm_bindgen]
extern "C" {
    /// A `Promise`'s `then` with plain functions (js-sys's `then2` wants closures).
    #[wasm_bindgen(js_name = Promise)]
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_with(this: &Thenable, ok: &JsValue, err: &JsValue) -> Promise;
}

thread_local! {
    /// The promises awaited through [`settled`] (slots.rs: their life-cycle).
    static SLOTS: RefCell<Slots<Result<JsValue, JsValue>>> = RefCell::new(Slots::default());
    /// Each slot's callbacks, by slot (see [`callbacks_of`]).
    static CALLBACKS: RefCell<Vec<(JsValue, JsValue)>> = const { RefCell::new(Vec::new()) };
    /// `(slot, fulfilled, value)`, called by the promise (bound to its slot).
    static ON_SETTLE: Function = wasm_bindgen::closure::Closure::<dyn Fn(u32, bool, JsValue)>::new(
        |slot: u32, ok: bool, value: JsValue| {
            let result = if ok { Ok(value) } else { Err(value) };
            let waker = SLOTS.with(|s| s.borrow_mut().settle(slot as usize, result));
            if let Some(w) = waker {
                w.wake();
            }
        },
    )
    .into_js_value()
    .into();
}

/// See [`settled`].
pub struct Settling {
    slot: usize,
    /// Its result has been taken: the slot may already serve another promise.
    done: bool,
}

impl Future for Settling {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Ready(Err(JsValue::UNDEFINED));
        }
        let slot = self.slot;
        let polled = match SLOTS.with(|s| s.borrow_mut().poll(slot, cx.waker())) {
            Poll::Ready(Some(result)) => Poll::Ready(result),
            // Not reachable: a polled future's slot is never free or abandoned.
            Poll::Ready(None) => Poll::Ready(Err(JsValue::UNDEFINED)),
            Poll::Pending => Poll::Pending,
        };
        if polled.is_ready() {
            self.done = true;
        }
        polled
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        SLOTS.with(|s| s.borrow_mut().abandon(self.slot));
    }
}

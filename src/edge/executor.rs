//! Runs the fetch handler's future to a `Promise`, polling it in the very callback that
//! wakes it (the way a JavaScript `await` resumes), where wasm-bindgen-futures' spawn
//! would queue one more microtask per wake. In workerd `queueMicrotask` is the dearest
//! call of a request on the hot path: this executor took the worker's CPU per request
//! from ~680 to ~610 us in `tests/bench/edge-bench.mjs`'s sequential run.
//! The awaits themselves stay `wasm_bindgen_futures::JsFuture`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use js_sys::{Function, Promise};
use wasm_bindgen::JsValue;

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
    /// Live tasks by id (a slot is reused once its task is done): no hashing on the
    /// path of every wake.
    static TASKS: RefCell<Vec<Option<Rc<Task>>>> = const { RefCell::new(Vec::new()) };
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
    let id = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        match t.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                t.push(None);
                t.len() - 1
            }
        }
    }) as u32;
    let task = Rc::new(Task {
        job: RefCell::new(Some(Box::pin(job))),
        polling: Cell::new(false),
        again: Cell::new(false),
        waker: Waker::from(Arc::new(Wakes(id))),
        resolve,
        reject,
    });
    TASKS.with(|t| {
        if let Some(slot) = t.borrow_mut().get_mut(id as usize) {
            *slot = Some(task);
        }
    });
    run(id);
    promise
}

fn run(id: u32) {
    let Some(task) = TASKS.with(|t| t.borrow().get(id as usize).cloned().flatten()) else {
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
                TASKS.with(|t| {
                    if let Some(slot) = t.borrow_mut().get_mut(id as usize) {
                        *slot = None;
                    }
                });
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

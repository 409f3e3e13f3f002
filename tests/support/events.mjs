// What the emulator recorded, read as events: shared by the suites that check what a
// page delivered (the script tag, the queue's hostile-input and page-environment cases,
// the README's example).

/** Every event the emulator accepted, in the order it got them: `{ metric, time, properties, value, value_currency (where sent), unique_id, profile }`. */
export function events(requests) {
  return requests.filter((r) => r.accepted).flatMap((r) => {
    const a = r.body?.data?.attributes ?? {};
    if (r.path === '/client/events') return [{ ...flat(a), profile: a.profile?.data?.attributes }];
    if (r.path === '/client/event-bulk-create') {
      const profile = a.profile?.data?.attributes;
      return (a.events?.data ?? []).map((e) => ({ ...flat(e.attributes), profile }));
    }
    return [];
  });
}
function flat(a) {
  return {
    metric: a.metric?.data?.attributes?.name,
    time: a.time,
    properties: a.properties,
    value: a.value,
    ...(a.value_currency !== undefined && { value_currency: a.value_currency }),
    unique_id: a.unique_id,
  };
}

-- 0011_webhook_deliveries_done: the sweeper deletes deliveries that were
-- delivered or abandoned long ago (store.FinishedDeliveryAge); this index
-- finds them without reading the ones still due.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at)
	WHERE delivered_at <> 0 OR abandoned_at <> 0;

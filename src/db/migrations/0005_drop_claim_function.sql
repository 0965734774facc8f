-- An instant upload's claim adds its asset through the one TypeScript path every asset takes
-- (LibraryService.addAsset): the function that wrote the asset columns and counters a second time goes.
DROP FUNCTION IF EXISTS pixshare_claim_upload(uuid, timestamptz, uuid, uuid, text, text, uuid, timestamptz, boolean, text, bigint, text, text);

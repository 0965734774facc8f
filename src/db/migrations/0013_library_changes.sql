CREATE TABLE "library_change_floor" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"through_xid" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "library_changes" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "library_changes_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"user_id" uuid NOT NULL,
	"asset_id" uuid NOT NULL,
	"op" text NOT NULL,
	"xid" bigint NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "library_changes_user_xid_idx" ON "library_changes" USING btree ("user_id","xid","seq");--> statement-breakpoint
CREATE INDEX "library_changes_at_idx" ON "library_changes" USING btree ("at");--> statement-breakpoint
CREATE FUNCTION library_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'assets' THEN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO library_changes (user_id, asset_id, op, xid) VALUES (NEW.user_id, NEW.id, 'added', pg_current_xact_id()::text::bigint);
    ELSIF TG_OP = 'DELETE' THEN
      INSERT INTO library_changes (user_id, asset_id, op, xid) VALUES (OLD.user_id, OLD.id, 'removed', pg_current_xact_id()::text::bigint);
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
      INSERT INTO library_changes (user_id, asset_id, op, xid) VALUES (NEW.user_id, NEW.id, 'updated', pg_current_xact_id()::text::bigint);
    END IF;
  ELSIF TG_TABLE_NAME = 'folder_assets' THEN
    -- The asset itself going (a cascade) is its own 'removed'.
    INSERT INTO library_changes (user_id, asset_id, op, xid)
      SELECT a.user_id, a.id, 'moved', pg_current_xact_id()::text::bigint FROM assets a
      WHERE a.id = CASE WHEN TG_OP = 'DELETE' THEN OLD.asset_id ELSE NEW.asset_id END;
  ELSIF TG_TABLE_NAME = 'folders' AND NEW.name IS DISTINCT FROM OLD.name THEN
    INSERT INTO library_changes (user_id, asset_id, op, xid)
      SELECT NEW.user_id, fa.asset_id, 'moved', pg_current_xact_id()::text::bigint FROM folder_assets fa WHERE fa.folder_id = NEW.id;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER assets_library_change AFTER INSERT OR DELETE OR UPDATE OF name ON assets FOR EACH ROW EXECUTE FUNCTION library_change();
--> statement-breakpoint
CREATE TRIGGER folder_assets_library_change AFTER INSERT OR DELETE ON folder_assets FOR EACH ROW EXECUTE FUNCTION library_change();
--> statement-breakpoint
CREATE TRIGGER folders_library_change AFTER UPDATE OF name ON folders FOR EACH ROW EXECUTE FUNCTION library_change();
--> statement-breakpoint
INSERT INTO library_change_floor (id, through_xid) VALUES (1, 0);

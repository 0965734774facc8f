CREATE TABLE "device_commands" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"requester_device_id" uuid,
	"target_device_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"folder" text,
	"since" timestamp with time zone,
	"state" text DEFAULT 'pending' NOT NULL,
	"path" text,
	"relay_after" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_id" text,
	"lease_until" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"progress" jsonb,
	"folder_ids" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"result" jsonb,
	"error_code" text,
	"error_message" text
);
--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "agent_seen_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "agent_port" integer;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "agent_addresses" jsonb;--> statement-breakpoint
ALTER TABLE "devices" ADD COLUMN "agent_folders" jsonb;--> statement-breakpoint
ALTER TABLE "device_commands" ADD CONSTRAINT "device_commands_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_commands" ADD CONSTRAINT "device_commands_requester_device_id_devices_id_fk" FOREIGN KEY ("requester_device_id") REFERENCES "public"."devices"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_commands" ADD CONSTRAINT "device_commands_target_device_id_devices_id_fk" FOREIGN KEY ("target_device_id") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "device_commands_target_idx" ON "device_commands" USING btree ("target_device_id","state");--> statement-breakpoint
CREATE INDEX "device_commands_user_idx" ON "device_commands" USING btree ("user_id","created_at");
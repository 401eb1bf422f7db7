/* The partition tables' field tables and type names, generated from the
 * lists in partitions.h, and the two layout drivers that carry them so that
 * `vise explain mbr` and `vise explain gpt` find them.  Type names follow
 * util-linux's (sfdisk --list-types), so the two tools agree. */
#include <stddef.h>
#include <string.h>

#include "formats/partitions.h"

const struct fname mbr_status_names[] = {
	{ 0x00, "inactive", "not the partition the BIOS boots" },
	{ 0x80, "active", "the BIOS boots this partition (boot flag)" },
	{ 0, NULL, NULL },
};

const struct fname mbr_type_names[] = {
	{ 0x00, "Empty", "unused entry" },
	{ 0x01, "FAT12", NULL },
	{ 0x04, "FAT16 <32M", NULL },
	{ 0x05, "Extended", "holds the EBR chain (CHS addressing)" },
	{ 0x06, "FAT16", NULL },
	{ 0x07, "HPFS/NTFS/exFAT", NULL },
	{ 0x0b, "W95 FAT32", NULL },
	{ 0x0c, "W95 FAT32 (LBA)", NULL },
	{ 0x0e, "W95 FAT16 (LBA)", NULL },
	{ 0x0f, "W95 Ext'd (LBA)", "holds the EBR chain (LBA addressing)" },
	{ 0x11, "Hidden FAT12", NULL },
	{ 0x12, "Compaq diagnostics", NULL },
	{ 0x14, "Hidden FAT16 <32M", NULL },
	{ 0x16, "Hidden FAT16", NULL },
	{ 0x17, "Hidden HPFS/NTFS", NULL },
	{ 0x1b, "Hidden W95 FAT32", NULL },
	{ 0x1c, "Hidden W95 FAT32 (LBA)", NULL },
	{ 0x1e, "Hidden W95 FAT16 (LBA)", NULL },
	{ 0x27, "Hidden NTFS WinRE", NULL },
	{ 0x39, "Plan 9", NULL },
	{ 0x41, "PPC PReP Boot", NULL },
	{ 0x42, "SFS", NULL },
	{ 0x4d, "QNX4.x", NULL },
	{ 0x63, "GNU HURD or SysV", NULL },
	{ 0x80, "Old Minix", NULL },
	{ 0x81, "Minix / old Linux", NULL },
	{ 0x82, "Linux swap / Solaris", NULL },
	{ 0x83, "Linux", NULL },
	{ 0x84, "OS/2 hidden or Intel hibernation", NULL },
	{ 0x85, "Linux extended", "holds the EBR chain" },
	{ 0x86, "NTFS volume set", NULL },
	{ 0x87, "NTFS volume set", NULL },
	{ 0x88, "Linux plaintext", NULL },
	{ 0x8e, "Linux LVM", NULL },
	{ 0x9f, "BSD/OS", NULL },
	{ 0xa0, "IBM Thinkpad hibernation", NULL },
	{ 0xa5, "FreeBSD", NULL },
	{ 0xa6, "OpenBSD", NULL },
	{ 0xa8, "Darwin UFS", NULL },
	{ 0xa9, "NetBSD", NULL },
	{ 0xab, "Darwin boot", NULL },
	{ 0xaf, "HFS / HFS+", NULL },
	{ 0xbe, "Solaris boot", NULL },
	{ 0xbf, "Solaris", NULL },
	{ 0xda, "Non-FS data", NULL },
	{ 0xde, "Dell Utility", NULL },
	{ 0xea, "Linux extended boot", NULL },
	{ 0xeb, "BeOS fs", NULL },
	{ 0xee, "GPT", "protective entry: the disk has a GPT" },
	{ 0xef, "EFI (FAT-12/16/32)", NULL },
	{ 0xf8, "EBBR protective", NULL },
	{ 0xfb, "VMware VMFS", NULL },
	{ 0xfc, "VMware VMKCORE", NULL },
	{ 0xfd, "Linux raid autodetect", NULL },
	{ 0, NULL, NULL },
};

const struct fname gpt_attr_names[] = {
	{ 0, "required", "platform required: tools must not delete it" },
	{ 1, "no_block_io", "firmware must not expose it as a block device" },
	{ 2, "legacy_bios_bootable", "a BIOS-style boot loader may boot it" },
	{ 48, "type_bit48", "type specific (ChromeOS: priority bit 0)" },
	{ 56, "type_bit56", "type specific (ChromeOS: successful boot)" },
	{ 59, "type_bit59", "type specific (systemd: grow filesystem)" },
	{ 60, "read_only", "type specific (Microsoft basic data, systemd)" },
	{ 61, "shadow_copy", "type specific (Microsoft basic data)" },
	{ 62, "hidden", "type specific (Microsoft basic data)" },
	{ 63, "no_automount", "type specific (Microsoft basic data, systemd)" },
	{ 0, NULL, NULL },
};

struct gpt_type {
	const char *guid;
	const char *name;
};

static const struct gpt_type gpt_types[] = {
	{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System" },
	{ "024DEE41-33E7-11D3-9D69-0008C781F39F", "MBR partition scheme" },
	{ "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
	{ "9E1A2D38-C612-4316-AA26-8B49521E5A8B", "PowerPC PReP boot" },
	{ "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved" },
	{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data" },
	{ "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3", "Microsoft LDM metadata" },
	{ "AF9B60A0-1431-4F62-BC68-3311714A69AD", "Microsoft LDM data" },
	{ "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery environment" },
	{ "E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D", "Microsoft Storage Spaces" },
	{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
	{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
	{ "3B8F8425-20E0-4F3B-907F-1A25A76F98E8", "Linux server data" },
	{ "44479540-F297-41B2-9AF7-D131D5F0458A", "Linux root (x86)" },
	{ "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)" },
	{ "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3", "Linux root (ARM)" },
	{ "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "Linux root (ARM-64)" },
	{ "993D8D3D-F80E-4225-855A-9DAF8ED7EA97", "Linux root (IA-64)" },
	{ "77055800-792C-4F94-B39A-98C91B762BB6", "Linux root (LoongArch-64)" },
	{ "C31C45E6-3F39-412E-80FB-4809C4980599", "Linux root (PPC64LE)" },
	{ "60D5A7FE-8E7D-435C-B714-3DD8162144E1", "Linux root (RISC-V-32)" },
	{ "72EC70A6-CF74-40E6-BD49-4BDA08E8F224", "Linux root (RISC-V-64)" },
	{ "5EEAD9A9-FE09-4A1E-A1D7-520D00531306", "Linux root (S390X)" },
	{ "8DA63339-0007-60C0-C436-083AC8230908", "Linux reserved" },
	{ "933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home" },
	{ "A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID" },
	{ "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM" },
	{ "4D21B016-B534-45C2-A9FB-5C16E091FD2D", "Linux variable data" },
	{ "7EC6F557-3BC5-4ACA-B293-16EF5DF639D1", "Linux temporary data" },
	{ "75250D76-8CC6-458E-BD66-BD47CC81A812", "Linux /usr (x86)" },
	{ "8484680C-9521-48C6-9C11-B0720656F69E", "Linux /usr (x86-64)" },
	{ "7D0359A3-02B3-4F0A-865C-654403E70625", "Linux /usr (ARM)" },
	{ "B0E01050-EE5F-4390-949A-9101B17104E9", "Linux /usr (ARM-64)" },
	{ "B933FB22-5C3F-4F91-AF90-E2BB0FA50702", "Linux /usr (RISC-V-32)" },
	{ "BEAEC34B-8442-439B-A40B-984381ED097D", "Linux /usr (RISC-V-64)" },
	{ "BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot" },
	{ "773F91EF-66D4-49B5-BD83-D683BF40AD16", "Linux user's home" },
	{ "CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS" },
	{ "7FFEC5C9-2D00-49B7-8941-3EA10A5586B7", "Linux dm-crypt" },
	{ "516E7CB4-6ECF-11D6-8FF8-00022D09712B", "FreeBSD data" },
	{ "83BD6B9D-7F41-11DC-BE0B-001560B84F0F", "FreeBSD boot" },
	{ "516E7CB5-6ECF-11D6-8FF8-00022D09712B", "FreeBSD swap" },
	{ "516E7CB6-6ECF-11D6-8FF8-00022D09712B", "FreeBSD UFS" },
	{ "516E7CBA-6ECF-11D6-8FF8-00022D09712B", "FreeBSD ZFS" },
	{ "516E7CB8-6ECF-11D6-8FF8-00022D09712B", "FreeBSD Vinum" },
	{ "48465300-0000-11AA-AA11-00306543ECAC", "Apple HFS/HFS+" },
	{ "7C3457EF-0000-11AA-AA11-00306543ECAC", "Apple APFS" },
	{ "55465300-0000-11AA-AA11-00306543ECAC", "Apple UFS" },
	{ "52414944-0000-11AA-AA11-00306543ECAC", "Apple RAID" },
	{ "426F6F74-0000-11AA-AA11-00306543ECAC", "Apple boot" },
	{ "53746F72-6167-11AA-AA11-00306543ECAC", "Apple Core storage" },
	{ "6A82CB45-1DD2-11B2-99A6-080020736631", "Solaris boot" },
	{ "6A85CF4D-1DD2-11B2-99A6-080020736631", "Solaris root" },
	{ "6A898CC3-1DD2-11B2-99A6-080020736631", "Solaris /usr & Apple ZFS" },
	{ "49F48D5A-B10E-11DC-B99B-0019D1879648", "NetBSD FFS" },
	{ "49F48D32-B10E-11DC-B99B-0019D1879648", "NetBSD swap" },
	{ "824CC7A0-36A8-11E3-890A-952519AD3F61", "OpenBSD data" },
	{ "FE3A2A5D-4F32-41A7-B725-ACCC3285A309", "ChromeOS kernel" },
	{ "3CB8E202-3B7E-47DD-8A3C-7FF2A13CFCEC", "ChromeOS root fs" },
	{ "2E0A753D-9E48-43B0-8337-B15192CB1B5E", "ChromeOS reserved" },
	{ "4FBD7E29-9D25-41B8-AFD0-062C0CEFF05D", "Ceph OSD" },
	{ "AA31E02A-400F-11DB-9590-000C2911D1B8", "VMware VMFS" },
	{ "9D275380-40AD-11DB-BF97-000C2911D1B8", "VMware Diagnostic" },
	{ "42465331-3BA3-10F1-802A-4861696B7521", "Haiku BFS" },
};

const char *mbr_type_name(unsigned type)
{
	const char *n = fname_lookup(mbr_type_names, type);

	return n ? n : "unknown";
}

const char *gpt_type_name(const uint8_t guid[16])
{
	char text[37];

	guid_text(guid, text);
	for (size_t i = 0; i < sizeof gpt_types / sizeof gpt_types[0]; i++)
		if (!strcmp(gpt_types[i].guid, text))
			return gpt_types[i].name;
	return "unknown";
}

SDESC_DEFINE(mbr, "master boot record", 512, SD_LE,
	     "sector 0 of a PC disk: boot code, disk signature and four "
	     "partition entries", MBR_LIST)
SDESC_DEFINE(mbr_entry, "MBR partition entry", 16, SD_LE,
	     "one partition: boot flag, CHS and LBA start, type, length",
	     MBR_ENTRY_LIST)
SDESC_DEFINE(ebr, "extended boot record", 512, SD_LE,
	     "one link of the chain inside an extended partition: a logical "
	     "partition and the next EBR", EBR_LIST)
SDESC_DEFINE(gpt_header, "GPT header", 92, SD_LE,
	     "at sector 1 and (backup) at the last sector: where the entry "
	     "array is, the usable area, the disk GUID, two CRC-32s",
	     GPT_HEADER_LIST)
SDESC_DEFINE(gpt_entry, "GPT partition entry", 128, SD_LE,
	     "one entry of the array: type, unique GUID, first and last "
	     "sector, attributes, name", GPT_ENTRY_LIST)

static const struct sdesc *const mbr_sdescs[] = {
	&mbr_desc, &mbr_entry_desc, &ebr_desc, NULL,
};

static const struct sdesc *const gpt_sdescs[] = {
	&gpt_header_desc, &gpt_entry_desc, NULL,
};

/* A layout is read through a disk (`vise layout`), never opened as one. */
static int layout_driver_open(struct image *img, struct vise_err *e)
{
	return err_set(e, VE_USAGE, "'%s' is a partition table, not a disk "
		       "format; 'vise layout' reads it through any disk",
		       img->drv->name);
}

static const char *const mbr_aliases[] = { "dos", "msdos", "ebr", NULL };
static const char *const gpt_aliases[] = { "efi", NULL };

const struct driver mbr_driver = {
	.name = "mbr",
	.aliases = mbr_aliases,
	.description = "PC partition table (MBR and the EBR chain)",
	.kind = DRV_LAYOUT,
	.open = layout_driver_open,
	.sdescs = mbr_sdescs,
	.check = mbr_check,
};

const struct driver gpt_driver = {
	.name = "gpt",
	.aliases = gpt_aliases,
	.description = "GUID partition table (UEFI)",
	.kind = DRV_LAYOUT,
	.open = layout_driver_open,
	.sdescs = gpt_sdescs,
	.check = gpt_check,
	.repair = gpt_repair,
};
